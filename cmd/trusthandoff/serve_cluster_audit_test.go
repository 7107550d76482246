package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/natstest"
	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
)

// verifyAt posts env to a sidecar's /v1/verify as token and returns the status and the
// decision's reason ("ACCEPT" for an acceptance). Safe to call from any goroutine.
func verifyAt(url, token string, env []byte) (int, string, error) {
	req, err := http.NewRequest("POST", url+"/v1/verify", bytes.NewReader(env))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	c := http.Client{Timeout: 20 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var d struct{ Decision, Reason string }
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		return res.StatusCode, "", fmt.Errorf("body is not JSON: %w", err)
	}
	if d.Decision == "ACCEPT" {
		return res.StatusCode, "ACCEPT", nil
	}
	return res.StatusCode, d.Reason, nil
}

func readyz(url string) int {
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// collectedLog runs `audit collect --once` into logPath, checks the log with `audit
// verify`, and returns its records' event types and packet ids.
func collectedLog(t *testing.T, natsURL, logPath string) (types map[string]int, accepted map[string]int) {
	t.Helper()
	mustTH(t, 0, "", "audit", "collect", "--nats", natsURL, "--out", logPath, "--once")
	mustTH(t, 0, "", "audit", "verify", logPath)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	types, accepted = map[string]int{}, map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			EventType string         `json:"event_type"`
			Payload   map[string]any `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		types[r.EventType]++
		if r.EventType == "packet_accepted" {
			id, _ := r.Payload["packet_id"].(string)
			accepted[id]++
		}
	}
	return types, accepted
}

// TestServeClusterOneAuditLog: three sidecars sharing one Redis publish their audit events
// to one NATS JetStream stream; the collector builds one log from it that verifies and
// holds exactly one packet_accepted per acceptance, although every envelope was sent to
// every node at once. With NATS killed no node accepts (503) and /readyz says so; with
// NATS back the nodes recover without a restart and nothing recorded is lost or doubled.
func TestServeClusterOneAuditLog(t *testing.T) {
	rs := redistest.Start(t)
	ns := natstest.Start(t)
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	bob := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids["bob"]).json(t)["token"].(string)
	redisURL := "redis://" + rs.Addr + "/0"
	var nodes []*sidecar
	for range 3 {
		nodes = append(nodes, startServe(t, nil, "--registry", w.reg, "--redis", redisURL,
			"--agent-tokens", tokens, "--audit-nats", ns.URL, "--audit-nats-timeout", "2s"))
	}
	sign := func() []byte {
		return []byte(mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"],
			"--intent", "summarize", "--actions", "read_tickets").stdout)
	}

	const envelopes = 12
	answers := 0
	var mu sync.Mutex
	acceptedBy := map[int]int{} // envelope index -> ACCEPT count
	for i := range envelopes {
		env := sign()
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 2 { // twice per node: six concurrent deliveries of one envelope
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, why, err := verifyAt(n.url, bob, env)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						t.Errorf("envelope %d: %v", i, err)
					case code != 200:
						t.Errorf("envelope %d: status %d (%s)", i, code, why)
					case why == "ACCEPT":
						acceptedBy[i]++
						answers++
					case why != "replay_detected":
						t.Errorf("envelope %d: rejected %s, want replay_detected", i, why)
						answers++
					default:
						answers++
					}
				}()
			}
		}
		wg.Wait()
	}
	for i := range envelopes {
		if acceptedBy[i] != 1 {
			t.Fatalf("envelope %d accepted %d times across the cluster, want once", i, acceptedBy[i])
		}
	}

	logPath := filepath.Join(w.dir, "cluster.jsonl")
	types, accepted := collectedLog(t, ns.URL, logPath)
	if types["packet_accepted"] != envelopes || len(accepted) != envelopes {
		t.Fatalf("cluster log: %d packet_accepted records for %d packets, want %d: %v", types["packet_accepted"], len(accepted), envelopes, types)
	}
	if types["packet_rejected"] != answers-envelopes {
		t.Fatalf("cluster log: %d packet_rejected records, want %d (one per answered rejection): %v", types["packet_rejected"], answers-envelopes, types)
	}

	// NATS down: a fresh envelope is never accepted, every node says 503, and unready.
	ns.Kill()
	for i, n := range nodes {
		code, why, err := verifyAt(n.url, bob, sign())
		if err != nil || code != 503 || why == "ACCEPT" {
			t.Fatalf("node %d with NATS down: %d %s %v, want 503", i, code, why, err)
		}
		if c := readyz(n.url); c != 503 {
			t.Fatalf("node %d /readyz with NATS down: %d, want 503", i, c)
		}
	}

	// NATS back (same port, same store): every node becomes ready by itself and accepts.
	ns.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for i, n := range nodes {
		for readyz(n.url) != 200 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d not ready 30s after NATS came back: %s", i, n.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, n := range nodes {
		if code, why, err := verifyAt(n.url, bob, sign()); err != nil || code != 200 || why != "ACCEPT" {
			t.Fatalf("node %d after recovery: %d %s %v", i, code, why, err)
		}
	}
	types, accepted = collectedLog(t, ns.URL, logPath)
	if types["packet_accepted"] != envelopes+len(nodes) || len(accepted) != envelopes+len(nodes) {
		t.Fatalf("cluster log after recovery: %d packet_accepted for %d packets, want %d", types["packet_accepted"], len(accepted), envelopes+len(nodes))
	}
	for id, n := range accepted {
		if n != 1 {
			t.Fatalf("packet %s accepted %d times in the log", id, n)
		}
	}
	for _, n := range nodes {
		n.stop(t)
	}
}

// TestServeAuditNATSUsage: the NATS sink's usage errors, and a password in the URL that
// never reaches the output.
func TestServeAuditNATSUsage(t *testing.T) {
	w := newWorld(t)
	base := []string{"serve", "--registry", w.reg, "--state", w.state, "--open-verify"}
	r := th(t, "", append(base, "--audit-nats", "nats://127.0.0.1:1", "--audit-log", filepath.Join(w.dir, "a.jsonl"))...)
	if r.code != 2 || !strings.Contains(r.stderr, "--audit-nats and --audit-log") {
		t.Fatalf("both sinks: %d %s", r.code, r.stderr)
	}
	r = th(t, "", append(base, "--audit-nats", "nats://127.0.0.1:1", "--audit-nats-timeout", "0s")...)
	if r.code != 2 || !strings.Contains(r.stderr, "--audit-nats-timeout") {
		t.Fatalf("zero timeout: %d %s", r.code, r.stderr)
	}
	const pw = "s3cret-Pa55word"
	r = th(t, "", append(base, "--audit-nats", "nats://user:"+pw+"@127.0.0.1:%zz")...)
	if r.code != 2 || strings.Contains(r.stderr+r.stdout, pw) {
		t.Fatalf("bad URL: %d %s", r.code, r.stderr)
	}
	port := freeTCPPort(t) // nothing listens there
	r = th(t, "", append(base, "--audit-nats", fmt.Sprintf("nats://user:%s@127.0.0.1:%d", pw, port))...)
	if r.code != 3 || strings.Contains(r.stderr+r.stdout, pw) {
		t.Fatalf("unreachable NATS: %d %s", r.code, r.stderr)
	}
	r = th(t, "", "audit", "collect", "--nats", fmt.Sprintf("nats://user:%s@127.0.0.1:%d", pw, port), "--out", filepath.Join(w.dir, "c.jsonl"), "--once", "--timeout", "3s")
	if r.code != 3 || strings.Contains(r.stderr+r.stdout, pw) {
		t.Fatalf("collect, unreachable NATS: %d %s", r.code, r.stderr)
	}
}
