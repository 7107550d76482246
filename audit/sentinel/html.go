package sentinel

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
)

//go:embed assets/report.html.tmpl
var reportHTML string

//go:embed assets/report.js
var reportJS string

// contentSecurityPolicy forbids every load (no network, no other file) and every script
// but the report's own, named by its hash.
var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(reportJS))
	return "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-" +
		base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'"
}()

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"seqs": seqList,
	"vis":  visible,
	"time": func(e Entry) string { return e.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z") },
}).Parse(strings.Replace(reportHTML, "CONTENT_SECURITY_POLICY", contentSecurityPolicy, 1)))

// WriteHTML writes rep as one self-contained HTML page: no external resource of any kind
// (its Content-Security-Policy forbids loading any), an inline script that draws the
// delegation graph as SVG from the data embedded in the page, the findings with the
// records they cite, and the timeline (at most Settings.MaxHTMLTimeline entries; a note
// counts the rest, which the JSON report keeps). Every value taken from the log is
// escaped by html/template. Drawn elements carry data-node, data-edge and
// data-timeline-entry attributes.
func (rep *Report) WriteHTML(w io.Writer) error {
	tl := rep.Timeline
	limit := rep.Settings.MaxHTMLTimeline
	if limit <= 0 {
		limit = DefaultMaxHTMLTimeline
	}
	hidden := 0
	if len(tl) > limit {
		hidden = len(tl) - limit
		tl = tl[:limit]
	}
	return reportTemplate.Execute(w, struct {
		R        *Report
		Timeline []Entry
		Hidden   int
		Layout   layout
		Script   template.JS
	}{rep, tl, hidden, layoutGraph(rep.Graph), template.JS(reportJS)})
}

// layout is what the page's script draws: positions computed here, deterministically.
type layout struct {
	Width  int          `json:"width"`
	Height int          `json:"height"`
	Nodes  []layoutNode `json:"nodes"`
	Edges  []layoutEdge `json:"edges"`
}

type layoutNode struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	X        int    `json:"x"`
	Y        int    `json:"y"`
	Findings int    `json:"findings"`
}

type layoutEdge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Decision string `json:"decision"`
	Path     string `json:"path"`
	Label    string `json:"label"`
	LX       int    `json:"lx"`
	LY       int    `json:"ly"`
}

// layoutGraph places the agents on a circle in id order (a circle large enough for all),
// and draws each edge as a curve bending to its right, so a→b and b→a stay apart; an
// agent's handoffs to itself are a loop above it.
func layoutGraph(g Graph) layout {
	n := len(g.Nodes)
	r := max(140.0, float64(n)*56/(2*math.Pi))
	const margin = 70.0
	size := int(2*r + 2*margin)
	out := layout{Width: size, Height: size, Nodes: []layoutNode{}, Edges: []layoutEdge{}}
	pos := make(map[string][2]float64, n)
	for i, nd := range g.Nodes {
		a := 2*math.Pi*float64(i)/float64(max(n, 1)) - math.Pi/2
		x, y := margin+r+r*math.Cos(a), margin+r+r*math.Sin(a)
		if n == 1 {
			x, y = margin+r, margin+r
		}
		pos[nd.ID] = [2]float64{x, y}
		label := visible(nd.ID)
		if rs := []rune(label); len(rs) > 16 {
			label = string(rs[:16]) + "…"
		}
		out.Nodes = append(out.Nodes, layoutNode{ID: nd.ID, Label: label, X: int(x), Y: int(y), Findings: nd.Findings})
	}
	for _, e := range g.Edges {
		a, b := pos[e.From], pos[e.To]
		le := layoutEdge{From: e.From, To: e.To, Decision: e.Decision,
			Label: fmt.Sprintf("%d✓ %d✗ %d dry", e.Accepted, e.Rejected, e.DryRun)}
		if e.From == e.To {
			x, y := a[0], a[1]-22
			le.Path = fmt.Sprintf("M %.0f %.0f C %.0f %.0f %.0f %.0f %.0f %.0f", x-10, y, x-40, y-60, x+40, y-60, x+10, y)
			le.LX, le.LY = int(x), int(y-52)
		} else {
			dx, dy := b[0]-a[0], b[1]-a[1]
			l := math.Hypot(dx, dy)
			ux, uy := dx/l, dy/l
			x1, y1 := a[0]+24*ux, a[1]+24*uy
			x2, y2 := b[0]-26*ux, b[1]-26*uy
			// control point: the midpoint pushed to the right of the direction
			cx, cy := (x1+x2)/2-uy*30, (y1+y2)/2+ux*30
			le.Path = fmt.Sprintf("M %.0f %.0f Q %.0f %.0f %.0f %.0f", x1, y1, cx, cy, x2, y2)
			le.LX, le.LY = int((x1+x2)/4+cx/2), int((y1+y2)/4+cy/2)
		}
		out.Edges = append(out.Edges, le)
	}
	return out
}

// visible returns s when every rune is graphic (or a plain space), else its Go-quoted
// form, so control and formatting characters (a terminal escape, a bidi override) in a
// value from the log are shown, never interpreted.
func visible(s string) string {
	for _, r := range s {
		if r != ' ' && !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
