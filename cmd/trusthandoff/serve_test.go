package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sidecar is a running `trusthandoff serve`.
type sidecar struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	stdout *syncBuffer // what followed the listen line
	done   chan error
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServe runs the built binary's serve command on a free loopback port and waits for
// its {"listen": ADDR} line.
func startServe(t *testing.T, env []string, args ...string) *sidecar {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{cmd: cmd, stderr: &errb, stdout: &syncBuffer{}, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		if line, err := br.ReadString('\n'); err == nil {
			lines <- strings.TrimSuffix(line, "\n")
		}
		close(lines)
		_, _ = io.Copy(s.stdout, br)
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("serve exited without listening: %s", errb.String())
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["listen"] == "" {
			t.Fatalf("first stdout line %q is not {\"listen\": ADDR}", line)
		}
		s.url = "http://" + m["listen"]
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen within 30s: %s", errb.String())
	}
	return s
}

func (s *sidecar) post(t *testing.T, path, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatalf("%s: body is not JSON: %v", path, err)
	}
	return res.StatusCode, m
}

func TestServeVerifyAndGracefulStop(t *testing.T) {
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	tok := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids["bob"]).json(t)
	if tok["agent_id"] != w.ids["bob"] || !strings.HasPrefix(tok["token"].(string), "thk_") {
		t.Fatalf("token add printed %v", tok)
	}
	data, err := os.ReadFile(tokens)
	if err != nil || strings.Contains(string(data), tok["token"].(string)) {
		t.Fatalf("the tokens file holds the token itself (or is unreadable: %v)", err)
	}
	if st, _ := os.Stat(tokens); st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file mode %v", st.Mode().Perm())
	}
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "summarize", "--actions", "read_tickets").stdout

	// Settings from the environment: the tokens file comes from TRUSTHANDOFF_AGENT_TOKENS.
	s := startServe(t, []string{"TRUSTHANDOFF_AGENT_TOKENS=" + tokens}, "--registry", w.reg, "--state", w.state)
	code, d := s.post(t, "/v1/verify", tok["token"].(string), []byte(env))
	if code != 200 || d["decision"] != "ACCEPT" {
		t.Fatalf("verify: %d %v", code, d)
	}
	code, d = s.post(t, "/v1/verify", tok["token"].(string), []byte(env))
	if code != 200 || d["reason"] != "replay_detected" {
		t.Fatalf("replay: %d %v", code, d)
	}
	code, d = s.post(t, "/v1/verify", "", []byte(env))
	if code != 401 {
		t.Fatalf("no token: %d %v", code, d)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM: %s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	if strings.Contains(s.stderr.String(), tok["token"].(string)) {
		t.Fatal("the log quotes a token")
	}
	// The nonce survived the restart: the state was synced.
	r := th(t, env, "verify", "--registry", w.reg, "--state", w.state, "-")
	wantReason(t, r.json(t), "REJECT", "replay_detected")
}

func TestServeUsageErrors(t *testing.T) {
	w := newWorld(t)
	cases := map[string][]string{
		"no registry":      {"serve", "--state", w.state},
		"bad listen":       {"serve", "--listen", "nowhere", "--registry", w.reg, "--state", w.state},
		"tls half":         {"serve", "--registry", w.reg, "--state", w.state, "--tls-cert", "x.pem"},
		"bad tokens file":  {"serve", "--registry", w.reg, "--state", w.state, "--agent-tokens", w.write(t, "bad.json", `{"x":"y"}`)},
		"unknown config":   {"serve", "--registry", w.reg, "--state", w.state, "--config", w.write(t, "c.yaml", "nonsense: 1\n")},
		"token add no id":  {"token", "add", "--tokens", filepath.Join(w.dir, "t.json")},
		"token add bad id": {"token", "add", "--tokens", filepath.Join(w.dir, "t.json"), "--agent-id", "bob"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) { mustTH(t, 2, "", args...) })
	}
}
