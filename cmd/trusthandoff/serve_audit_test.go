package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
)

func (s *sidecar) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

// stop ends the server with SIGTERM and waits for it.
func (s *sidecar) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
}

// TestServeAuditLogAndWitness: serve --audit-log with --witness pushes the log's
// checkpoint to a running `audit witness` after records arrive, and the auditor token
// reads the cosigned checkpoint and the export, and nothing else.
func TestServeAuditLogAndWitness(t *testing.T) {
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	bob := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids["bob"]).json(t)["token"].(string)
	const auditor = "auditor-token-0123456789abcdef"
	auditorFile := w.write(t, "auditor.token", auditor+"\n")
	if err := os.Chmod(auditorFile, 0o600); err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(w.dir, "audit.jsonl")
	logVkey := writeAuditLog(t, logPath, "", "seed", 1) // creates the log key the witness trusts
	wkey := filepath.Join(w.dir, "witness.key")
	wvkey := mustTH(t, 0, "", "audit", "witness-key", "--name", "witness.example/w1", "--out", wkey).json(t)["vkey"].(string)
	wit := startWitnessCLI(t, wkey, filepath.Join(w.dir, "witness-state"), logVkey)

	s := startServe(t, nil, "--registry", w.reg, "--state", w.state, "--agent-tokens", tokens,
		"--audit-log", logPath, "--auditor-token-file", auditorFile,
		"--witness", wit.url, "--witness-key", wvkey, "--witness-interval", "100ms")
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "summarize", "--actions", "read_tickets").stdout
	if code, d := s.post(t, "/v1/verify", bob, []byte(env)); code != 200 || d["decision"] != "ACCEPT" {
		t.Fatalf("verify: %d %v", code, d)
	}

	lv, _ := note.NewVerifier(logVkey)
	wv, err := witness.NewCosignatureVerifier(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	// The log now holds the seed record and the ACCEPT; within the checkpoint refresh and
	// the push interval the served checkpoint covers both and carries the cosignature.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := s.get(t, "/v1/audit/checkpoint", auditor)
		if code == 200 {
			c, n, err := audit.OpenCheckpoint(body, note.VerifierList(lv, wv))
			if err == nil && c.Size >= 2 && audit.HasSignature(n, wv) {
				break
			}
		}
		if time.Now().After(deadline) {
			s.stop(t)
			t.Fatalf("no cosigned checkpoint of size >= 2 within 20s: %d %s\nserve: %s", code, body, s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	code, body := s.get(t, "/v1/audit/export", auditor)
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	var n int
	for sc := bufio.NewScanner(bytes.NewReader(body)); sc.Scan(); n++ {
		if !strings.Contains(sc.Text(), `"seq":`) {
			t.Fatalf("export line %q", sc.Text())
		}
	}
	if n != 2 {
		t.Fatalf("export has %d records, want 2:\n%s", n, body)
	}
	if code, _ := s.post(t, "/v1/verify", auditor, []byte(env)); code != 403 {
		t.Fatalf("the auditor token verified: %d", code)
	}
	if code, _ := s.get(t, "/v1/audit/export", bob); code != 403 {
		t.Fatalf("an agent token read the export: %d", code)
	}
	s.stop(t) // the server's stderr is read once it has exited
	if strings.Contains(s.stderr.String(), auditor) || strings.Contains(s.stderr.String(), bob) {
		t.Fatal("the server log quotes a token")
	}
}

func TestServeAuditUsageErrors(t *testing.T) {
	w := newWorld(t)
	logPath := filepath.Join(w.dir, "audit.jsonl")
	base := []string{"serve", "--registry", w.reg, "--state", w.state, "--open-verify"}
	const vkey = "witness.example/w1+00000000+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	cases := map[string][]string{
		"witness without log":  {"--witness", "http://127.0.0.1:1", "--witness-key", vkey},
		"auditor without log":  {"--auditor-token-file", filepath.Join(w.dir, "none")},
		"witness without key":  {"--audit-log", logPath, "--witness", "http://127.0.0.1:1"},
		"key without witness":  {"--audit-log", logPath, "--witness-key", vkey},
		"credentials in URL":   {"--audit-log", logPath, "--witness", "http://user:secret@127.0.0.1:1", "--witness-key", vkey},
		"not http":             {"--audit-log", logPath, "--witness", "ftp://127.0.0.1:1", "--witness-key", vkey},
		"bad witness key":      {"--audit-log", logPath, "--witness", "http://127.0.0.1:1", "--witness-key", "nonsense"},
		"zero interval":        {"--audit-log", logPath, "--witness-interval", "0s"},
		"missing auditor file": {"--audit-log", logPath, "--auditor-token-file", filepath.Join(w.dir, "none")},
		"short auditor token":  {"--audit-log", logPath, "--auditor-token-file", w.write(t, "short.token", "abc\n")},
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			r := mustTH(t, 2, "", append(base, extra...)...)
			if strings.Contains(r.stderr, "secret") {
				t.Fatalf("stderr quotes the URL's password: %s", r.stderr)
			}
		})
	}
}

// TestServeAuditStdout: with --audit-stdout every decision's events follow the listen line
// on stdout, one JSON object per line in the reference's shape.
func TestServeAuditStdout(t *testing.T) {
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	bob := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids["bob"]).json(t)["token"].(string)
	s := startServe(t, nil, "--registry", w.reg, "--state", w.state, "--agent-tokens", tokens, "--audit-stdout")
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "summarize", "--actions", "read_tickets").stdout
	if code, d := s.post(t, "/v1/verify", bob, []byte(env)); code != 200 || d["decision"] != "ACCEPT" {
		t.Fatalf("verify: %d %v", code, d)
	}
	if code, d := s.post(t, "/v1/verify", bob, []byte(env)); code != 200 || d["reason"] != "replay_detected" {
		t.Fatalf("replay: %d %v", code, d)
	}
	// The answers came after the lines were written; the pipe may still hold them.
	var types []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		types = types[:0]
		for _, line := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
			var ev map[string]any
			if line == "" {
				continue
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("stdout line %q: %v", line, err)
			}
			for _, k := range []string{"event_id", "event_type", "timestamp", "producer_id", "correlation_id", "idempotency_key", "payload"} {
				if _, ok := ev[k]; !ok {
					t.Fatalf("stdout line %q lacks %s", line, k)
				}
			}
			types = append(types, ev["event_type"].(string))
		}
		if len(types) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(types, ",") != "packet_accepted,packet_rejected,replay_detected" {
		t.Fatalf("events on stdout: %v", types)
	}
	if code, _ := s.get(t, "/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	s.stop(t)

	r := th(t, "", "serve", "--registry", w.reg, "--state", w.state, "--open-verify", "--audit-stdout", "--audit-log", filepath.Join(w.dir, "a.jsonl"))
	if r.code != 2 || !strings.Contains(r.stderr, "give one") {
		t.Fatalf("two sinks: %d %s", r.code, r.stderr)
	}
}
