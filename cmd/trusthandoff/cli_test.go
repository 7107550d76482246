package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI tests run the built binary, as users and scripts do.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trusthandoff-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trusthandoff")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.stdout)
	}
	return m
}

func th(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// mustTH runs the CLI and fails unless it exits with want.
func mustTH(t *testing.T, want int, stdin string, args ...string) result {
	t.Helper()
	r := th(t, stdin, args...)
	if r.code != want {
		t.Fatalf("trusthandoff %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// world is a temp dir with agents alice, bob, carol and approver olga in a registry.
type world struct {
	dir, reg, state string
	ids             map[string]string
	n               int // files written
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), ids: map[string]string{}}
	w.reg = filepath.Join(w.dir, "reg.json")
	w.state = filepath.Join(w.dir, "state")
	for _, name := range []string{"alice", "bob", "carol", "olga"} {
		r := mustTH(t, 0, "", "keygen", "--out", w.key(name))
		w.ids[name] = r.json(t)["agent_id"].(string)
		args := []string{"registry", "add", "--registry", w.reg, "--public-key", w.key(name) + ".pub"}
		if name == "olga" {
			args = append(args, "--role", "approver")
		}
		mustTH(t, 0, "", args...)
	}
	return w
}

func (w *world) key(name string) string { return filepath.Join(w.dir, name+".key") }

func (w *world) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) verify(t *testing.T, want int, file string, extra ...string) map[string]any {
	t.Helper()
	args := append([]string{"verify", "--registry", w.reg, "--state", w.state}, extra...)
	return mustTH(t, want, "", append(args, file)...).json(t)
}

func wantReason(t *testing.T, d map[string]any, decision, reason string) {
	t.Helper()
	if d["decision"] != decision || d["reason"] != reason {
		t.Fatalf("decision %v %v (%v), want %s %s", d["decision"], d["reason"], d["detail"], decision, reason)
	}
}

func TestKeygenWritesPrivateKey0600(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "a.key")
	out := mustTH(t, 0, "", "keygen", "--out", k).json(t)
	if !strings.HasPrefix(out["agent_id"].(string), "agent:") || !strings.Contains(out["public_key_pem"].(string), "BEGIN PUBLIC KEY") {
		t.Fatalf("keygen output: %v", out)
	}
	st, err := os.Stat(k)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, %v", st.Mode(), err)
	}
	// never overwrites
	mustTH(t, 2, "", "keygen", "--out", k)
	// a group-readable key is refused, and the key is not echoed
	if err := os.Chmod(k, 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustTH(t, 2, "", "sign", "--key", k, "--to", "agent:x", "--intent", "x")
	if !strings.Contains(r.stderr, "0600") || strings.Contains(r.stderr, "PRIVATE KEY") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestSignVerifyReplayAcrossProcesses(t *testing.T) {
	w := newWorld(t)
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "Summarize tickets", "--actions", "read_tickets").stdout
	f := w.write(t, "env.json", env)
	wantReason(t, w.verify(t, 0, f, "--strict"), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 1, f, "--strict"), "REJECT", "replay_detected")
	// stdin works too, and the replay is still detected
	r := mustTH(t, 1, env, "verify", "--registry", w.reg, "--state", w.state, "-")
	wantReason(t, r.json(t), "REJECT", "replay_detected")
}

func TestVerifyRejectsBadInputWithExit1(t *testing.T) {
	w := newWorld(t)
	cases := map[string]string{
		"empty":          "",
		"not json":       "hello",
		"duplicate keys": `{"packet": {}, "packet": {}}`,
		"array":          `[]`,
		"NaN":            `{"packet": NaN}`,
	}
	for name, input := range cases {
		t.Run(name, func(t *testing.T) {
			r := mustTH(t, 1, input, "verify", "--registry", w.reg, "--state", w.state, "-")
			wantReason(t, r.json(t), "REJECT", "malformed_envelope")
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	w := newWorld(t)
	for name, args := range map[string][]string{
		"missing file":     {"verify", "--registry", w.reg, "--state", w.state, filepath.Join(w.dir, "nope.json")},
		"unknown flag":     {"verify", "--bogus"},
		"missing --to":     {"sign", "--key", w.key("alice"), "--intent", "x"},
		"bad --at":         {"verify", "--registry", w.reg, "--at", "yesterday", "-"},
		"unknown command":  {"frobnicate"},
		"registry missing": {"verify", "--registry", filepath.Join(w.dir, "none.json"), "-"},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustTH(t, 2, "{}", args...)
			if !strings.HasPrefix(r.stderr, "trusthandoff: error: ") {
				t.Fatalf("stderr: %q", r.stderr)
			}
		})
	}
}

func TestTamperedRejected(t *testing.T) {
	w := newWorld(t)
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "Summarize tickets", "--actions", "read_tickets").stdout
	tampered := strings.Replace(env, "Summarize tickets", "Delete all tickets", 1)
	wantReason(t, w.verify(t, 1, w.write(t, "t.json", tampered)), "REJECT", "invalid_signature")
	// the forged copy did not burn the nonce: the real packet is still accepted
	wantReason(t, w.verify(t, 0, w.write(t, "e.json", env)), "ACCEPT", "ok")
}

func TestVerifyWithoutRegistryIsSelfCertified(t *testing.T) {
	w := newWorld(t)
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x", "--actions", "read").stdout
	r := mustTH(t, 0, env, "verify", "--state", w.state, "-")
	wantReason(t, r.json(t), "ACCEPT", "ok")
	if !strings.Contains(r.stderr, "self-certified") {
		t.Errorf("no warning: %q", r.stderr)
	}
	review := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x", "--requires-review").stdout
	approved := mustTH(t, 0, "", "approve", "--key", w.key("olga"), "--envelope", w.write(t, "r.json", review)).stdout
	wantReason(t, mustTH(t, 1, approved, "verify", "--state", w.state, "-").json(t), "REJECT", "approval_invalid")
}

func TestStoreUnavailableExit3(t *testing.T) {
	w := newWorld(t)
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x").stdout
	notADir := w.write(t, "file", "x")
	r := mustTH(t, 3, env, "verify", "--registry", w.reg, "--state", filepath.Join(notADir, "state"), "-")
	if !strings.HasPrefix(r.stderr, "trusthandoff: error: ") {
		t.Fatalf("stderr %q", r.stderr)
	}
	wantReason(t, r.json(t), "REJECT", "store_unavailable")
	mustTH(t, 3, "", "revoke", "--state", filepath.Join(notADir, "state"), "--agent-id", "agent:x")
}
