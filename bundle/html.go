package bundle

import (
	"embed"
	"html/template"
	"io"
	"math"
)

//go:embed assets/report.html.tmpl
var assets embed.FS

var reportTemplate = template.Must(template.ParseFS(assets, "assets/report.html.tmpl"))

// WriteHTML writes rep as a self-contained HTML page (no scripts, no external resources):
// the verdict, the delegation graph (agents as nodes, steps as edges, green when the step
// verified, red when it did not), the steps and the failures. Every value from the
// bundle is escaped by html/template, and written inert first as WriteText writes it (a
// value holding a control or format character, such as a bidirectional override, is
// Go-quoted).
func (rep *Report) WriteHTML(w io.Writer) error {
	r := rep.inert()
	return reportTemplate.Execute(w, struct {
		Report *Report
		Graph  graph
	}{r, layout(r)})
}

// inert returns a copy of rep whose text fields are inert (see WriteText).
func (rep *Report) inert() *Report {
	r := *rep
	r.Workflow = Workflow{Kind: inert(rep.Workflow.Kind), ID: inert(rep.Workflow.ID)}
	if c := rep.Checkpoint; c != nil {
		r.Checkpoint = &CheckpointOf{Origin: inert(c.Origin), Size: c.Size, Signer: inert(c.Signer)}
	}
	r.Steps = make([]StepReport, len(rep.Steps))
	for i, s := range rep.Steps {
		s.PacketID, s.From, s.To, s.Intent = inert(s.PacketID), inert(s.From), inert(s.To), inert(s.Intent)
		s.Executor, s.Status, s.ReceiptID = inert(s.Executor), inert(s.Status), inert(s.ReceiptID)
		s.Actions = inertAll(s.Actions)
		s.Capability = inertAll(s.Capability)
		s.Flags = inertAll(s.Flags)
		r.Steps[i] = s
	}
	r.Errors = make([]FailureJSON, len(rep.Errors))
	for i, f := range rep.Errors {
		f.PacketID, f.Detail = inert(f.PacketID), inert(f.Detail)
		r.Errors[i] = f
	}
	return &r
}

func inertAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = inert(s)
	}
	return out
}

type graph struct {
	Width, Height int
	Nodes         []node
	Edges         []edge
}

type node struct {
	ID, Label string
	X, Y, TY  int
}

type edge struct {
	Step                   int
	OK                     bool
	X1, Y1, X2, Y2, LX, LY int
}

// layout places the agents on a circle in order of first appearance.
func layout(rep *Report) graph {
	var ids []string
	seen := map[string]int{}
	for _, s := range rep.Steps {
		for _, a := range []string{s.From, s.To} {
			if _, ok := seen[a]; !ok && a != "" {
				seen[a] = len(ids)
				ids = append(ids, a)
			}
		}
	}
	const r, margin = 160.0, 60.0
	g := graph{Width: int(2*r + 2*margin), Height: int(2*r + 2*margin)}
	pos := make([][2]float64, len(ids))
	for i, id := range ids {
		a := 2*math.Pi*float64(i)/float64(max(len(ids), 1)) - math.Pi/2
		x, y := margin+r+r*math.Cos(a), margin+r+r*math.Sin(a)
		pos[i] = [2]float64{x, y}
		label := id
		if len(label) > 14 {
			label = label[:14] + "…"
		}
		g.Nodes = append(g.Nodes, node{ID: id, Label: label, X: int(x), Y: int(y), TY: int(y) + 38})
	}
	for _, s := range rep.Steps {
		i, ok1 := seen[s.From]
		j, ok2 := seen[s.To]
		if !ok1 || !ok2 || i == j {
			continue
		}
		a, b := pos[i], pos[j]
		dx, dy := b[0]-a[0], b[1]-a[1]
		l := math.Hypot(dx, dy)
		ux, uy := dx/l, dy/l
		e := edge{Step: s.Step, OK: s.OK,
			X1: int(a[0] + 24*ux), Y1: int(a[1] + 24*uy), X2: int(b[0] - 24*ux), Y2: int(b[1] - 24*uy)}
		e.LX, e.LY = (e.X1+e.X2)/2+int(8*uy), (e.Y1+e.Y2)/2-int(8*ux)
		g.Edges = append(g.Edges, e)
	}
	return g
}
