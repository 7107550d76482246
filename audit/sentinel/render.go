package sentinel

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// WriteJSON writes rep as indented JSON (the field names are stable: spec/sentinel.md).
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes rep for a human: the log, the findings (most severe first, each with
// the records it cites), the counts, the delegation graph and the timeline. Every value
// taken from the log is quoted when it holds anything but plain printable characters, so
// a hostile agent id cannot drive the terminal.
func (rep *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	l := rep.Log
	p("Sentinel report")
	if l.Path != "" {
		p(" for %s", safe(l.Path))
	}
	p("\n")
	if l.Verified {
		p("log: %d records, verified", l.Records)
		if cp := l.Checkpoint; cp != nil {
			p(" against checkpoint %s (%d records, root %s; %d after it checked by the chain alone)", safe(cp.Origin), cp.Size, cp.Root, l.Uncovered)
		} else {
			p(" by its chain alone (no checkpoint)")
		}
		if len(l.Witnesses) > 0 {
			p(", cosigned by %s", strings.Join(mapSafe(l.Witnesses), ", "))
		}
		p("\n")
	} else {
		p("log: %d records, NOT verified\n", rep.Counts.Records)
	}
	c := rep.Counts
	p("decisions: %d (%d accepted, %d rejected, %d dry runs)\n\n", c.Decisions, c.Accepted, c.Rejected, c.DryRun)
	p("Findings: %d\n", len(rep.Findings))
	for _, f := range rep.Findings {
		p("  [%s] %s: %s\n", strings.ToUpper(string(f.Severity)), f.Rule, f.Summary)
		p("      records: %s\n", seqList(f.Seqs))
	}
	if len(rep.Findings) == 0 {
		p("  none\n")
	}
	p("\nDelegation graph: %s, %s\n", plural(len(rep.Graph.Nodes), "agent"), plural(len(rep.Graph.Edges), "edge"))
	for _, e := range rep.Graph.Edges {
		p("  %s -> %s: %d accepted, %d rejected, %d dry runs\n", safe(e.From), safe(e.To), e.Accepted, e.Rejected, e.DryRun)
	}
	p("\nTimeline: %d records\n", len(rep.Timeline))
	for _, e := range rep.Timeline {
		p("  %6d %s %s", e.Seq, e.Timestamp.UTC().Format(time.RFC3339Nano), safe(e.Type))
		if e.From != "" || e.To != "" {
			p(" %s -> %s", safe(e.From), safe(e.To))
		}
		if e.Reason != "" {
			p(" %s", safe(e.Reason))
		}
		if e.DryRun {
			p(" (dry run)")
		}
		if len(e.Rules) > 0 {
			p(" [%s]", strings.Join(e.Rules, ", "))
		}
		p("\n")
	}
	return bw.Flush()
}

// safe returns s as is when it is plain (printable, no spaces or quotes), else quoted.
func safe(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

func mapSafe(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = safe(s)
	}
	return out
}

func seqList(seqs []uint64) string {
	var b strings.Builder
	for i, s := range seqs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}
