//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pebblestore "github.com/trusthandoff/trusthandoff-go/store/pebble"
)

// addApproval replaces the envelope file with the output of 'trusthandoff approve' on it,
// atomically (write, then rename), as a reviewer does while exec waits.
func addApproval(t *testing.T, w *world, env, approver string, extra ...string) {
	t.Helper()
	out := mustTH(t, 0, "", append([]string{"approve", "--key", w.key(approver), "--envelope", env}, extra...)...).stdout
	tmp := env + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, env); err != nil {
		t.Fatal(err)
	}
}

// TestExecWaitHoldsNoLock: while exec waits for approvals it holds nothing of the state
// directory: a verify and a revoke on the same directory finish meanwhile (each given far
// less patience for the lock than the wait lasts). Each verification opens the directory
// afresh, so what happened during the wait counts (fail closed): a revocation of the
// sender, a deny, a directory that cannot be opened.
func TestExecWaitHoldsNoLock(t *testing.T) {
	cases := []struct {
		name     string
		during   func(t *testing.T, w *world, env string) // what happens while exec waits
		wantCode int
		wantWhy  string // reason in the decision
		wantRan  bool
	}{
		{"an approval arrives", func(t *testing.T, w *world, env string) {
			addApproval(t, w, env, "olga")
		}, 0, "ok", true},
		{"the sender is revoked, then an approval arrives", func(t *testing.T, w *world, env string) {
			mustTH(t, 0, "", "revoke", "--state", w.state, "--state-lock-wait", "3s", "--agent-id", w.ids["alice"])
			addApproval(t, w, env, "olga")
		}, 1, "agent_revoked", false},
		{"a deny arrives", func(t *testing.T, w *world, env string) {
			addApproval(t, w, env, "olga", "--deny")
		}, 1, "policy_denied", false},
		{"a non-approver's approval does not count, a reviewer's does", func(t *testing.T, w *world, env string) {
			addApproval(t, w, env, "bob")
			addApproval(t, w, env, "olga")
		}, 0, "ok", true},
		{"the state directory is held by another process when the approval arrives", func(t *testing.T, w *world, env string) {
			st, err := pebblestore.Open(w.state, pebblestore.Config{SweepInterval: -1})
			if err != nil {
				t.Fatalf("the state directory is still held by exec: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			addApproval(t, w, env, "olga")
		}, 3, "store_unavailable", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			env := sign(t, w, "alice", "bob", "--actions", "read_tickets", "--requires-review")
			orig, err := os.ReadFile(env)
			if err != nil {
				t.Fatal(err)
			}
			ran := filepath.Join(w.dir, "ran")
			b := startTH(t, w.dir, "exec", "--registry", w.reg, "--state", w.state, "--state-lock-wait", "300ms",
				"--wait-approval", "60s", env, "--", "touch", ran)
			eventually(t, "exec waiting for approval", 30*time.Second, func() bool { return b.stderrHas("needs approval: waiting") })

			// Meanwhile, other processes use the same state directory.
			other := sign(t, w, "carol", "bob", "--actions", "read_tickets")
			wantReason(t, mustTH(t, 0, "", "verify", "--registry", w.reg, "--state", w.state, "--state-lock-wait", "3s", other).json(t), "ACCEPT", "ok")
			mustTH(t, 0, "", "revoke", "--state", w.state, "--state-lock-wait", "3s", "--capability", "unrelated-capability")
			wantReason(t, mustTH(t, 1, "", "verify", "--registry", w.reg, "--state", w.state, "--state-lock-wait", "3s", other).json(t), "REJECT", "replay_detected")

			c.during(t, w, env)
			r := b.wait(t)
			if r.code != c.wantCode {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, c.wantCode, r.stdout, r.stderr)
			}
			res := execJSON(t, r)
			if res["reason"] != c.wantWhy || res["ran"] != c.wantRan {
				t.Fatalf("%v, want reason %s, ran %v", res, c.wantWhy, c.wantRan)
			}
			if _, err := os.Stat(ran); (err == nil) != c.wantRan {
				t.Fatalf("the command ran: %v, want %v", err == nil, c.wantRan)
			}
			if c.wantWhy == "policy_denied" {
				// The deny was recorded in the state directory: the packet stays denied without it.
				wantReason(t, w.verify(t, 1, w.write(t, "resent.json", string(orig))), "REJECT", "policy_denied")
			}
			if strings.Contains(c.name, "non-approver") && !strings.Contains(r.stderr, "does not count") {
				t.Fatalf("no warning about the non-approver's approval:\n%s", r.stderr)
			}
		})
	}
}

// TestExecWaitBounds: the wait ends with human_review_required when --wait-approval passes
// with no approval, and --wait-approval cannot re-read stdin.
func TestExecWaitBounds(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets", "--requires-review")
	ran := filepath.Join(w.dir, "ran")
	r := mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, "--wait-approval", "1s", env, "--", "touch", ran)
	wantReason(t, r.json(t), "REJECT", "human_review_required")
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the command ran without approval")
	}
	data, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	mustTH(t, 2, string(data), "exec", "--registry", w.reg, "--state", w.state, "--wait-approval", "1s", "-", "--", "touch", ran)
	mustTH(t, 2, "", "exec", "--registry", w.reg, "--state", w.state, "--wait-approval", "-1s", env, "--", "touch", ran)
	mustTH(t, 2, "", "exec", "--registry", w.reg, "--state", w.state, "--kill-after", "-1s", env, "--", "touch", ran)
	// The nonce was not consumed by the waits: the approved envelope still runs.
	addApproval(t, w, env, "olga")
	wantReason(t, mustTH(t, 0, "", "exec", "--registry", w.reg, "--state", w.state, env, "--", "touch", ran).json(t), "ACCEPT", "ok")
}
