package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/loadtest"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// outcome of one envelope in one run of the sidecar.
type outcome struct {
	answered bool
	decision string
	reason   string
	packetID string
}

// postVerify sends one envelope and reads the decision; answered is false when the
// connection failed (the sidecar was killed before answering).
func postVerify(client *http.Client, url, token string, env []byte) outcome {
	req, err := http.NewRequest("POST", url+"/v1/verify", bytes.NewReader(env))
	if err != nil {
		return outcome{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return outcome{}
	}
	defer res.Body.Close()
	var d struct{ Decision, Reason, PacketID string }
	var raw map[string]any
	if err := json.NewDecoder(res.Body).Decode(&raw); err != nil {
		return outcome{} // cut mid-answer: not an answer
	}
	d.Decision, _ = raw["decision"].(string)
	d.Reason, _ = raw["reason"].(string)
	d.PacketID, _ = raw["packet_id"].(string)
	if res.StatusCode != 200 {
		d.Decision, d.Reason = fmt.Sprintf("HTTP %d", res.StatusCode), fmt.Sprint(raw["error"])
	}
	return outcome{answered: true, decision: d.Decision, reason: d.Reason, packetID: d.PacketID}
}

// Rule: an ACCEPT of the embedded store is answered only once its nonce is durable. The
// sidecar is killed with SIGKILL in the middle of a concurrent load; after a restart on
// the same --state every envelope it answered ACCEPT is rejected replay_detected, no
// envelope is accepted twice over three runs, and the audit log still verifies and holds
// a packet_accepted record for every acknowledged ACCEPT.
func TestServeSurvivesKillMidLoad(t *testing.T) {
	const (
		total   = 600 // envelopes
		workers = 8
		killAt  = 150 // ACCEPT answers before the kill
	)
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	token := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids["bob"]).json(t)["token"].(string)
	key, err := identity.LoadPrivateKeyFile(w.key("alice"))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := loadtest.Envelopes(identity.NewKeySigner(key), w.ids["bob"], "summarize", total,
		packet.WithActions("read_tickets"), packet.WithTTL(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(w.dir, "audit.jsonl")
	args := []string{"--registry", w.reg, "--state", w.state, "--agent-tokens", tokens,
		"--audit-log", auditLog, "--log-level", "error"}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	// Run 1: concurrent load, SIGKILL once killAt envelopes have been accepted.
	s := startServe(t, nil, args...)
	first := make([]outcome, total)
	var next, accepted atomic.Int64
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		})
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				first[i] = postVerify(client, s.url, token, envs[i])
				if first[i].decision == "ACCEPT" && accepted.Add(1) >= killAt {
					kill()
				}
			}
		})
	}
	wg.Wait()
	kill()
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not die of SIGKILL within 30s")
	}
	var acks, unanswered int
	for i, o := range first {
		switch {
		case !o.answered:
			unanswered++
		case o.decision == "ACCEPT":
			acks++
		default:
			t.Fatalf("run 1, envelope %d: %s %s before the kill", i, o.decision, o.reason)
		}
	}
	if acks < killAt || unanswered == 0 {
		t.Fatalf("run 1: %d accepted, %d unanswered: the kill did not land mid-load", acks, unanswered)
	}
	t.Logf("run 1: %d accepted, %d unanswered before SIGKILL", acks, unanswered)

	// The audit log verifies after the kill and records every acknowledged ACCEPT.
	if r := mustTH(t, 0, "", "audit", "verify", auditLog).json(t); r["intact"] != true {
		t.Fatalf("audit verify after SIGKILL: %v", r)
	}
	logged := acceptedInAudit(t, auditLog)
	for i, o := range first {
		if o.decision == "ACCEPT" && !logged[o.packetID] {
			t.Fatalf("envelope %d (%s) was answered ACCEPT but has no packet_accepted record", i, o.packetID)
		}
	}

	// Runs 2 and 3: every envelope again. Accepted once at most, over all runs.
	acceptedBy := make([]int, total) // run that accepted the envelope, 0: none
	for i, o := range first {
		if o.decision == "ACCEPT" {
			acceptedBy[i] = 1
		}
	}
	for run := 2; run <= 3; run++ {
		s := startServe(t, nil, args...)
		for i, env := range envs {
			o := postVerify(client, s.url, token, env)
			switch {
			case !o.answered:
				t.Fatalf("run %d, envelope %d: no answer", run, i)
			case o.decision == "ACCEPT" && acceptedBy[i] == 0 && run == 2 && !first[i].answered:
				acceptedBy[i] = run // unanswered before the kill: may be accepted now, once
			case o.decision == "ACCEPT":
				t.Fatalf("run %d, envelope %d: accepted again (first accepted in run %d, run 1 answer %+v)", run, i, acceptedBy[i], first[i])
			case o.reason != "replay_detected":
				t.Fatalf("run %d, envelope %d: %s %s, want replay_detected", run, i, o.decision, o.reason)
			}
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.done:
			s.done <- err
			if err != nil {
				t.Fatalf("run %d: serve exited with %v after SIGTERM: %s", run, err, s.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("run %d: serve did not stop within 30s of SIGTERM", run)
		}
	}
	if r := mustTH(t, 0, "", "audit", "verify", auditLog).json(t); r["intact"] != true {
		t.Fatalf("audit verify after the restarts: %v", r)
	}
}

// acceptedInAudit returns the packet ids of the packet_accepted records of an audit log.
func acceptedInAudit(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"event_type":"packet_accepted"`) {
			continue
		}
		const key = `"packet_id":"`
		if _, rest, ok := strings.Cut(line, key); ok {
			if id, _, ok := strings.Cut(rest, `"`); ok {
				out[id] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
