package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// Rule: verify --audit-rotate-bytes rotates the log into sealed segments; audit verify,
// checkpoint and prove read the segmented log as one, and audit verify names a missing
// or tampered segment (exit 1).
func TestAuditRotateFlag(t *testing.T) {
	w := newWorld(t)
	log := filepath.Join(w.dir, "audit.jsonl")
	const runs = 6
	for range runs {
		w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", log, "--audit-rotate-bytes", "400")
	}
	if _, err := os.Stat(audit.SegmentPath(log, 2)); err != nil {
		t.Fatalf("no rotation: %v", err)
	}
	got := mustTH(t, 0, "", "audit", "verify", log).json(t)
	if got["intact"] != true || got["records"] != float64(runs) || got["checkpoint"].(map[string]any)["size"] != float64(runs) {
		t.Fatalf("segmented log: %v", got)
	}
	l, err := audit.ReadLog(log)
	if err != nil {
		t.Fatal(err)
	}
	id := l.Record(0).EventID // in the oldest segment
	vkey := mustTH(t, 0, "", "audit", "checkpoint", "--show-key", log).json(t)["log_key"].(string)
	proof := mustTH(t, 0, "", "audit", "prove", log, id)
	if got := mustTH(t, 0, proof.stdout, "audit", "prove", "--verify", "-", "--log-key", vkey).json(t); got["valid"] != true {
		t.Fatalf("proof: %v", got)
	}

	// Without the flag the log continues in the active file, segments and all.
	w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", log)
	if got := mustTH(t, 0, "", "audit", "verify", log).json(t); got["records"] != float64(runs+1) {
		t.Fatalf("%v", got)
	}

	// A missing segment is named; so is one swapped with another.
	seg1, seg2 := audit.SegmentPath(log, 1), audit.SegmentPath(log, 2)
	os.Rename(seg1, seg1+".bak")
	got = mustTH(t, 1, "", "audit", "verify", log).json(t)
	if got["intact"] != false || !strings.Contains(got["error"].(string), "audit.jsonl.000001 is missing") {
		t.Fatalf("segment deleted: %v", got)
	}
	os.Rename(seg2, seg1)
	os.Rename(seg1+".bak", seg2)
	got = mustTH(t, 1, "", "audit", "verify", log).json(t)
	if got["intact"] != false || !strings.Contains(got["error"].(string), "audit log audit.jsonl.000001:") {
		t.Fatalf("segments swapped: %v", got)
	}
	r := mustTH(t, 2, "", append([]string{"verify", "--registry", w.reg, "--state", w.state, "--audit-log", log, "--audit-rotate-bytes", "400"}, sign(t, w, "alice", "bob"))...)
	if !strings.Contains(r.stderr, "000001") {
		t.Fatalf("appending to a tampered segmented log: %q", r.stderr)
	}
}
