package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecutorKeyChecks: attest and receipt sign check the executor's key in one place,
// so every bad key or id is refused by both with exit 2 and the same message, and the
// private key never reaches the output.
func TestExecutorKeyChecks(t *testing.T) {
	w := newWorld(t)
	env := w.handoffFile(t, "env.json", "bob")
	loose := w.key("bob-loose")
	data, err := os.ReadFile(w.key("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	dir := filepath.Join(w.dir, "keydir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	commands := map[string][]string{
		"attest":       {"attest", "--envelope", env, "--status", "OK", "--result", "{}"},
		"receipt sign": {"receipt", "sign", "--envelope", env, "--outcome", "x"},
	}
	cases := []struct {
		name  string
		flags []string
		want  string // in stderr
	}{
		{"no key", nil, "--key is required"},
		{"group-readable key", []string{"--key", loose}, "chmod 600"},
		{"missing key file", []string{"--key", filepath.Join(w.dir, "nope.key")}, "nope.key"},
		{"a directory", []string{"--key", dir}, "keydir"},
		{"not a key", []string{"--key", env}, ""},
		{"bad agent id", []string{"--key", w.key("bob"), "--agent-id", "bob"}, "--agent-id:"},
		{"agent id with a newline", []string{"--key", w.key("bob"), "--agent-id", w.ids["bob"] + "\n"}, "--agent-id:"},
	}
	if err := os.Chmod(env, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var first string
			for name, args := range commands {
				r := mustTH(t, 2, "", append(append([]string{}, args...), tc.flags...)...)
				if r.stdout != "" || strings.Contains(r.stderr, "-----BEGIN") || !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("%s: stdout %q, stderr %q (want %q)", name, r.stdout, r.stderr, tc.want)
				}
				msg := strings.TrimSpace(r.stderr)
				if first == "" {
					first = msg
				} else if msg != first {
					t.Fatalf("the two commands refuse differently:\n%s\n%s", first, msg)
				}
			}
		})
	}
	// The key's own id by default, --agent-id when given: a receipt by carol's key is
	// refused for bob's packet either way it is named.
	for _, extra := range [][]string{nil, {"--agent-id", w.ids["bob"]}} {
		args := append([]string{"receipt", "sign", "--key", w.key("carol"), "--envelope", env, "--outcome", "x"}, extra...)
		if extra == nil {
			if r := mustTH(t, 2, "", args...); !strings.Contains(r.stderr, "addressed to") {
				t.Fatalf("stderr: %s", r.stderr)
			}
			continue
		}
		// Named as bob, carol's key signs; bob's registry entry refuses the key.
		rc := w.write(t, "carol-as-bob.json", mustTH(t, 0, "", args...).stdout)
		d := mustTH(t, 1, "", "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env, "--dry-run", rc).json(t)
		wantReason(t, d, "REJECT", "public_key_mismatch")
	}
}
