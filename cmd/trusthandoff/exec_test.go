package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
)

func TestExecRunsAcceptedHandoffs(t *testing.T) {
	w := newWorld(t)
	out := filepath.Join(w.dir, "ran")
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	r := mustTH(t, 0, "from stdin", "exec", "--registry", w.reg, "--state", w.state, env, "--", "sh", "-c", `echo "$TRUSTHANDOFF_PACKET_ID $TRUSTHANDOFF_ACTIONS $(cat)" > `+out)
	res := r.json(t)
	wantReason(t, res, "ACCEPT", "ok")
	got, _ := os.ReadFile(out)
	if res["ran"] != true || res["exit_code"] != float64(0) || strings.TrimSpace(string(got)) != res["packet_id"].(string)+` ["read_tickets"] from stdin` {
		t.Fatalf("result %v, command wrote %q", res, got)
	}
	// the same envelope again: a replay, and the command does not run
	os.Remove(out)
	wantReason(t, mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, env, "--", "touch", out).json(t), "REJECT", "replay_detected")
	if _, err := os.Stat(out); err == nil {
		t.Fatal("command ran for a replayed handoff")
	}
	// a failing command is exit 4, with its exit code
	res = mustTH(t, 4, "", "exec", "--registry", w.reg, "--state", w.state, sign(t, w, "alice", "bob"), "--", "sh", "-c", "exit 7").json(t)
	if res["exit_code"] != float64(7) {
		t.Fatalf("%v", res)
	}
	// a command killed by a signal, and one that cannot be started, are exit 4 too
	res = mustTH(t, 4, "", "exec", "--registry", w.reg, "--state", w.state, sign(t, w, "alice", "bob"), "--", "sh", "-c", "kill -KILL $$").json(t)
	if res["ran"] != true || res["exit_code"] != float64(-1) {
		t.Fatalf("%v", res)
	}
	r = mustTH(t, 4, "", "exec", "--registry", w.reg, "--state", w.state, sign(t, w, "alice", "bob"), "--", filepath.Join(w.dir, "no-such-command"))
	if res := r.json(t); res["ran"] != false || res["exit_code"] != nil || res["decision"] != "ACCEPT" || !strings.Contains(r.stderr, "no-such-command") {
		t.Fatalf("%v\n%s", res, r.stderr)
	}
	// unapproved review: rejected at once with --wait-approval 0 (the default)
	wantReason(t, mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, sign(t, w, "alice", "bob", "--requires-review"), "--", "true").json(t), "REJECT", "human_review_required")
	mustTH(t, 2, "", "exec", "--registry", w.reg, env)
}

func TestExecStopsCommandAtExpiry(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets", "--ttl", "2s")
	start := time.Now()
	rfile := filepath.Join(w.dir, "run.receipt")
	res := mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, "--receipt", rfile, "--receipt-key", w.key("bob"), env, "--", "sleep", "30").json(t)
	if res["ran"] != true || res["invalidated"] != "expired" || res["receipt_status"] != "TIMEOUT" {
		t.Fatalf("%v", res)
	}
	// The TIMEOUT receipt verifies: it ended as the handoff lapsed.
	reason := w.write(t, "reason.json", res["receipt_reason"].(string))
	wantReason(t, mustTH(t, 0, "", "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env,
		"--outcome", "", "--reason-file", reason, rfile).json(t), "ACCEPT", "ok")
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("the command ran %v past a 2 s handoff", took)
	}
}

// TestExecStopsCommandOnRevocation runs exec against a real redis-server; another process
// revokes the root capability and the running command is stopped.
func TestRedisWaitReplicasFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port())
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	// a lone server has no replica to acknowledge the nonce: fail closed
	r := mustTH(t, 3, "", "verify", "--registry", w.reg, "--redis", url, "--redis-wait-replicas", "1", env)
	wantReason(t, r.json(t), "REJECT", "store_unavailable")
	// The nonce may have reached the primary: it stays spent (a retry is a replay, never a
	// second chance at acceptance), and the sender re-signs.
	wantReason(t, mustTH(t, 1, "", "verify", "--registry", w.reg, "--redis", url, env).json(t), "REJECT", "replay_detected")
	fresh := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	wantReason(t, mustTH(t, 0, "", "verify", "--registry", w.reg, "--redis", url, fresh).json(t), "ACCEPT", "ok")
	wantReason(t, mustTH(t, 1, "", "verify", "--registry", w.reg, "--redis", url, fresh).json(t), "REJECT", "replay_detected")
	// an unreachable Redis fails closed too
	wantReason(t, mustTH(t, 3, "", "verify", "--registry", w.reg, "--redis", "redis://127.0.0.1:1/0", env).json(t), "REJECT", "store_unavailable")
}

func TestExecStopsCommandOnRevocation(t *testing.T) {
	srv := redistest.Start(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port())
	w := newWorld(t)
	for _, target := range []string{"capability", "agent"} {
		t.Run(target, func(t *testing.T) {
			rootID, root := delegate(t, w, "alice", "bob", "--actions", "read_tickets", "--max-tool-calls", "5")
			_, leaf := delegate(t, w, "bob", "carol", "--actions", "read_tickets", "--parent", root)
			env := sign(t, w, "bob", "carol", "--actions", "read_tickets", "--max-tool-calls", "5", "--capability", root, "--capability", leaf)
			started := filepath.Join(w.dir, "started-"+target)
			cmd := exec.Command(binary, "exec", "--registry", w.reg, "--redis", url, env, "--", "sh", "-c", "touch "+started+"; exec sleep 60")
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(started); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the command never started: %s", stdout.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			revoked := time.Now()
			want := "capability_revoked"
			if target == "capability" {
				mustTH(t, 0, "", "revoke", "--redis", url, "--capability", rootID)
			} else {
				mustTH(t, 0, "", "revoke", "--redis", url, "--agent-id", w.ids["alice"])
			}
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("the command kept running after the revocation")
			}
			t.Logf("%s revocation stopped the command %v after the revoke command started", target, time.Since(revoked))
			if cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit %d", cmd.ProcessState.ExitCode())
			}
			var res map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res["invalidated"] != want {
				t.Fatalf("result %s (%v)", stdout.String(), err)
			}
		})
	}
}

// TestExecWritesReceipts: exec --receipt signs what came of the run as the executor, and
// 'receipt verify' accepts it with the command's outcome: OK for a success, ERROR (with
// its reason) for a failure; a packet for another agent does not run; usage errors.
func TestExecWritesReceipts(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	outcome := filepath.Join(w.dir, "out.txt")
	rfile := filepath.Join(w.dir, "run.receipt")
	res := mustTH(t, 0, "", "exec", "--registry", w.reg, "--state", w.state, "--receipt", rfile, "--receipt-key", w.key("bob"),
		"--outcome-file", outcome, env, "--", "sh", "-c", "echo 3 tickets > "+outcome).json(t)
	if res["receipt"] != rfile || res["receipt_status"] != "OK" || res["receipt_reason"] != nil {
		t.Fatalf("result %v", res)
	}
	verify := []string{"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env}
	wantReason(t, mustTH(t, 1, "", append(verify, "--dry-run", "--outcome", "0 tickets", rfile)...).json(t), "REJECT", "outcome_mismatch")
	d := mustTH(t, 0, "", append(verify, "--outcome-file", outcome, rfile)...).json(t)
	wantReason(t, d, "ACCEPT", "ok")
	if d["executor"] != w.ids["bob"] {
		t.Fatalf("decision %v", d)
	}

	// A failing command: exit 4, and a valid receipt saying ERROR with its reason.
	env2 := sign(t, w, "alice", "bob")
	os.Remove(outcome)
	r := mustTH(t, 4, "", "exec", "--registry", w.reg, "--state", w.state, "--receipt", rfile, "--receipt-key", w.key("bob"),
		"--outcome-file", outcome, env2, "--", "sh", "-c", "exit 7")
	res = r.json(t)
	if res["receipt_status"] != "ERROR" || res["exit_code"] != float64(7) {
		t.Fatalf("result %v", res)
	}
	reason, _ := res["receipt_reason"].(string)
	if !strings.Contains(reason, "status 7") {
		t.Fatalf("receipt_reason %q", reason)
	}
	reasonFile := w.write(t, "reason.json", reason)
	wantReason(t, mustTH(t, 0, "", append([]string{"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env2},
		"--outcome", "", "--reason-file", reasonFile, rfile)...).json(t), "ACCEPT", "ok")

	// A packet for bob with carol's key: wrong_recipient, and nothing runs.
	ran := filepath.Join(w.dir, "ran")
	res = mustTH(t, 1, "", "exec", "--registry", w.reg, "--state", w.state, "--receipt", filepath.Join(w.dir, "c.receipt"), "--receipt-key", w.key("carol"),
		sign(t, w, "alice", "bob"), "--", "touch", ran).json(t)
	wantReason(t, res, "REJECT", "wrong_recipient")
	if _, err := os.Stat(ran); err == nil {
		t.Fatal("the command ran for a packet addressed to another agent than the executor")
	}

	for _, args := range [][]string{
		{"--receipt", rfile},            // no key
		{"--receipt-key", w.key("bob")}, // no --receipt
		{"--outcome-file", outcome},     // no --receipt
		{"--receipt", rfile, "--receipt-key", w.key("bob"), "--as", w.ids["carol"]}, // --as someone else
	} {
		mustTH(t, 2, "", append(append([]string{"exec", "--registry", w.reg, "--state", w.state}, args...), sign(t, w, "alice", "bob"), "--", "true")...)
	}
}
