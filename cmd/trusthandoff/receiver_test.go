package main

import (
	"testing"
	"time"
)

func TestVerifyAsRecipient(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	// carol's gate refuses bob's packet, and the refusal spends nothing.
	for _, as := range []string{w.ids["carol"], w.ids["alice"], w.ids["bob"] + "x", "agent:unknown"} {
		wantReason(t, w.verify(t, 1, env, "--as", as), "REJECT", "wrong_recipient")
	}
	wantReason(t, w.verify(t, 0, env, "--as", w.ids["bob"]), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 1, env, "--as", w.ids["bob"]), "REJECT", "replay_detected")
	// exec binds the recipient too, and does not run the command.
	env2 := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	r := mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, "--as", w.ids["carol"], env2, "--", "true")
	d := r.json(t)
	wantReason(t, d, "REJECT", "wrong_recipient")
	if d["ran"] != false {
		t.Fatalf("the command ran for the wrong recipient: %v", d)
	}
}

func TestVerifyDryRunConsumesNothing(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	for range 2 {
		d := w.verify(t, 0, env, "--dry-run")
		wantReason(t, d, "ACCEPT", "ok")
		if d["dry_run"] != true {
			t.Fatalf("dry_run not reported: %v", d)
		}
	}
	// --at implies a dry run: forensic re-verification does not spend the packet.
	at := time.Now().Add(10 * time.Second).UTC().Format(time.RFC3339)
	wantReason(t, w.verify(t, 0, env, "--at", at), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 0, env), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 1, env, "--dry-run"), "REJECT", "replay_detected")
	wantReason(t, w.verify(t, 1, env, "--at", at), "REJECT", "replay_detected")
	// --at with --dry-run=false consumes.
	env2 := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	wantReason(t, w.verify(t, 0, env2, "--at", at, "--dry-run=false"), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 1, env2), "REJECT", "replay_detected")
}

func TestDurationFlagZeroMeansZero(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	// Ten seconds before issue: inside the default 30 s skew, outside a zero skew.
	early := time.Now().Add(-10 * time.Second).UTC().Format(time.RFC3339Nano)
	wantReason(t, w.verify(t, 1, env, "--at", early, "--skew", "0s"), "REJECT", "issued_in_future")
	wantReason(t, w.verify(t, 0, env, "--at", early), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 0, env, "--at", early, "--skew", "11s"), "ACCEPT", "ok")
	mustTH(t, 2, "", "verify", "--registry", w.reg, "--state", w.state, "--skew", "301s", env)
	mustTH(t, 2, "", "verify", "--registry", w.reg, "--state", w.state, "--skew", "-1s", env)
}
