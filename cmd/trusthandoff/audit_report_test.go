package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// reportWorld runs the real pipeline through the binary into an audit log: an accepted
// handoff, its replay, three forged copies, a delivery to the wrong recipient.
func reportWorld(t *testing.T) (w *world, log string) {
	t.Helper()
	w = newWorld(t)
	log = filepath.Join(w.dir, "audit.jsonl")
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "Summarize tickets", "--actions", "read_tickets").stdout
	f := w.write(t, "env.json", env)
	w.verify(t, 0, f, "--audit-log", log)
	w.verify(t, 1, f, "--audit-log", log)
	for i := range 3 {
		forged := strings.Replace(env, "Summarize tickets", fmt.Sprintf("Delete all tickets %d", i), 1)
		w.verify(t, 1, w.write(t, fmt.Sprintf("forged%d.json", i), forged), "--audit-log", log)
	}
	other := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x", "--actions", "read").stdout
	w.verify(t, 1, w.write(t, "other.json", other), "--audit-log", log, "--as", w.ids["carol"])
	return w, log
}

type cliReport struct {
	Log struct {
		Verified   bool   `json:"verified"`
		Records    uint64 `json:"records"`
		Checkpoint *struct {
			Size uint64 `json:"size"`
		} `json:"checkpoint"`
	} `json:"log"`
	Counts struct {
		Records, Decisions, Accepted, Rejected, Nodes, Edges int
	} `json:"counts"`
	Findings []struct {
		Rule     string   `json:"rule"`
		Agent    string   `json:"agent"`
		Seqs     []uint64 `json:"seqs"`
		EventIDs []string `json:"event_ids"`
	} `json:"findings"`
	Graph struct {
		Nodes []struct{ ID string } `json:"nodes"`
		Edges []struct {
			From, To           string
			Accepted, Rejected int
		} `json:"edges"`
	} `json:"graph"`
	Timeline []struct {
		Seq  uint64 `json:"seq"`
		Type string `json:"event_type"`
	} `json:"timeline"`
}

// Rule: audit report verifies the log, then names what the real verifier's events show,
// citing the records; text, JSON and HTML agree.
func TestAuditReportPipeline(t *testing.T) {
	w, log := reportWorld(t)
	r := mustTH(t, 0, "", "audit", "report", log, "--format", "json")
	var rep cliReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !rep.Log.Verified || rep.Log.Checkpoint == nil || rep.Counts.Decisions != 6 || rep.Counts.Accepted != 1 || rep.Counts.Rejected != 5 {
		t.Fatalf("log %+v counts %+v", rep.Log, rep.Counts)
	}
	byRule := map[string][]uint64{}
	for _, f := range rep.Findings {
		if f.Agent != w.ids["alice"] || len(f.Seqs) != len(f.EventIDs) {
			t.Errorf("finding %+v", f)
		}
		byRule[f.Rule] = f.Seqs
	}
	types := map[uint64]string{}
	for _, e := range rep.Timeline {
		types[e.Seq] = e.Type
	}
	for rule, wantTypes := range map[string][]string{
		"replay_detected":         {"packet_rejected", "replay_detected"},
		"signature_failure_burst": {"packet_rejected", "packet_rejected", "packet_rejected"},
		"wrong_recipient":         {"packet_rejected", "wrong_recipient"},
	} {
		var got []string
		for _, s := range byRule[rule] {
			got = append(got, types[s])
		}
		if !slices.Equal(got, wantTypes) {
			t.Errorf("%s cites %v (%v), want records of types %v", rule, byRule[rule], got, wantTypes)
		}
	}
	if len(byRule) != 3 {
		t.Errorf("findings %v, want exactly replay, burst and wrong recipient", byRule)
	}
	if len(rep.Graph.Edges) != 1 || rep.Graph.Edges[0].Accepted != 1 || rep.Graph.Edges[0].Rejected != 5 || len(rep.Graph.Nodes) != 2 {
		t.Errorf("graph %+v", rep.Graph)
	}

	text := mustTH(t, 0, "", "audit", "report", log).stdout
	if !strings.HasPrefix(text, "Sentinel report") || strings.Index(text, "Findings: 3") > strings.Index(text, "Timeline:") {
		t.Errorf("text report:\n%s", text)
	}
	out := filepath.Join(w.dir, "report.html")
	if r := mustTH(t, 0, "", "audit", "report", log, "--format", "html", "--out", out); r.stdout != "" {
		t.Errorf("--out also wrote stdout: %q", r.stdout)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), "data-timeline-entry="); n != len(rep.Timeline) {
		t.Errorf("HTML timeline has %d entries, want %d", n, len(rep.Timeline))
	}
}

// hostileLog writes a log (with its checkpoint) whose agent ids are markup.
func hostileLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{"ok", "invalid_signature", "invalid_signature", "invalid_signature"} {
		typ, decision := audit.PacketAccepted, "ACCEPT"
		if reason != "ok" {
			typ, decision = audit.PacketRejected, "REJECT"
		}
		ev := audit.Event{EventID: fmt.Sprintf("ev-%d", i), EventType: typ, Timestamp: time.Unix(1_800_000_000+int64(i), 0).UTC(),
			CorrelationID: "<b>pkt</b>",
			Payload: map[string]any{"decision": decision, "reason": reason, "from_agent": `<script>alert("x")</script>`,
				"to_agent": "</svg><img src=x onerror=alert(1)>"}}
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Rule: values from the log are escaped in the HTML report; the text report shows them
// as data.
func TestAuditReportEscapesHostileIDs(t *testing.T) {
	log := hostileLog(t)
	page := mustTH(t, 0, "", "audit", "report", log, "--format", "html").stdout
	for _, bad := range []string{"<script>alert", "<img", "<b>pkt", "onerror=alert(1)>"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML report holds %q unescaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert") {
		t.Errorf("the hostile id is not shown escaped")
	}
	js := mustTH(t, 0, "", "audit", "report", log, "--format", "json").stdout
	if !strings.Contains(js, `"signature_failure_burst"`) {
		t.Errorf("no burst finding:\n%s", js)
	}
}

// Rule: a broken log gets no report: exit 1, the first broken record named.
func TestAuditReportBrokenLog(t *testing.T) {
	log := hostileLog(t)
	data, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], "invalid_signature", "ok_signature_xx", 1)
	os.WriteFile(log, []byte(strings.Join(lines, "")), 0o600)
	r := mustTH(t, 1, "", "audit", "report", log, "--format", "html")
	if r.stdout != "" || !strings.Contains(r.stderr, "broken at record 2") {
		t.Errorf("stdout %q\nstderr %q", r.stdout, r.stderr)
	}
	out := filepath.Join(filepath.Dir(log), "r.html")
	mustTH(t, 1, "", "audit", "report", log, "--out", out)
	if _, err := os.Stat(out); err == nil {
		t.Error("a report was written for a broken log")
	}
	// usage errors
	mustTH(t, 2, "", "audit", "report", log, "--format", "pdf")
	mustTH(t, 2, "", "audit", "report", filepath.Join(filepath.Dir(log), "missing.jsonl"))
	// --no-checkpoint with the checkpoint removed still needs an intact chain
	os.Remove(audit.CheckpointPath(log))
	mustTH(t, 1, "", "audit", "report", log, "--no-checkpoint")
	help := mustTH(t, 0, "", "audit", "report", "--help").stdout
	for _, rule := range []string{"replay_detected", "near_expiry_burst", "Example"} {
		if !strings.Contains(help, rule) {
			t.Errorf("--help does not mention %s", rule)
		}
	}
}

// Rule: a human's deny and a revoked sender, as the real verifier records them, are
// reported with the records behind them.
func TestAuditReportDeniedAndRevoked(t *testing.T) {
	w := newWorld(t)
	log := filepath.Join(w.dir, "audit.jsonl")
	review := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x", "--requires-review").stdout
	denied := mustTH(t, 0, "", "approve", "--key", w.key("olga"), "--envelope", w.write(t, "r.json", review), "--deny").stdout
	w.verify(t, 1, w.write(t, "d.json", denied), "--audit-log", log)
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x").stdout
	mustTH(t, 0, "", "revoke", "--state", w.state, "--agent-id", w.ids["alice"])
	w.verify(t, 1, w.write(t, "e.json", env), "--audit-log", log)
	var rep cliReport
	if err := json.Unmarshal([]byte(mustTH(t, 0, "", "audit", "report", log, "--format", "json").stdout), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string][]uint64{}
	for _, f := range rep.Findings {
		got[f.Rule] = f.Seqs
	}
	want := map[string][]uint64{"approval_denied": {1, 2}, "revoked_authority": {3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}
