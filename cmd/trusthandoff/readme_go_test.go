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

// TestReadmeGoSnippet builds the README's "Using the library" program as it is written and
// runs it on files the CLI made: it accepts a signed handoff and names the replay, and it
// reports (exit 1, no panic) a tampered envelope and a missing file.
func TestReadmeGoSnippet(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Using the library")
	if !ok {
		t.Fatal("README has no 'Using the library' section")
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no go block under 'Using the library'")
	}
	if !strings.HasPrefix(block, "package main\n") {
		t.Fatalf("the README's Go block is not a whole program (package main):\n%s", block)
	}

	// Build it inside this module (an overlay adds the file without writing to the tree),
	// so it compiles against this checkout's packages.
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	virtual := filepath.Join(root, "internal", "readmesnippet", "main.go")
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {virtual: src}})
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "snippet")
	build := exec.Command("go", "build", "-overlay", filepath.Join(dir, "overlay.json"), "-o", prog, "./internal/readmesnippet")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's Go block does not build: %v\n%s\n%s", err, out, block)
	}

	w := newWorld(t)
	env, err := os.ReadFile(sign(t, w, "alice", "bob", "--actions", "read_tickets"))
	if err != nil {
		t.Fatal(err)
	}
	regJSON, err := os.ReadFile(w.reg)
	if err != nil {
		t.Fatal(err)
	}
	otherReg := filepath.Join(w.dir, "bob-only.json")
	mustTH(t, 0, "", "registry", "add", "--registry", otherReg, "--public-key", w.key("bob")+".pub")
	bobOnly, err := os.ReadFile(otherReg)
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(env, &parsed); err != nil {
		t.Fatal(err)
	}
	packetID := parsed["packet"].(map[string]any)["packet_id"].(string)
	tampered := strings.Replace(string(env), "Handle ticket 4821", "Delete ticket 4821", 1)
	if tampered == string(env) {
		t.Fatal("tampering changed nothing")
	}

	// receiver.yaml: bob's policy; carol's refuses what is addressed to bob.
	bobPolicy := "version: 1\nas: " + w.ids["bob"] + "\nstrict: true\n"
	carolPolicy := "version: 1\nas: " + w.ids["carol"] + "\nstrict: true\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		code     int
		stdout   string
		inStderr string
	}{
		{"accepts, then names the replay", map[string]string{"reg.json": string(regJSON), "env.json": string(env), "receiver.yaml": bobPolicy}, 0, "accepted " + packetID + "\nreplay_detected\n", ""},
		{"another receiver's gate", map[string]string{"reg.json": string(regJSON), "env.json": string(env), "receiver.yaml": carolPolicy}, 1, "", "rejected: wrong_recipient"},
		{"tampered envelope", map[string]string{"reg.json": string(regJSON), "env.json": tampered, "receiver.yaml": bobPolicy}, 1, "", "rejected: invalid_signature"},
		{"garbage envelope", map[string]string{"reg.json": string(regJSON), "env.json": "{not json", "receiver.yaml": bobPolicy}, 1, "", "rejected: malformed_envelope"},
		{"sender not in the registry", map[string]string{"reg.json": string(bobOnly), "env.json": string(env), "receiver.yaml": bobPolicy}, 1, "", "rejected: unknown_agent"},
		{"no registry", map[string]string{"env.json": string(env), "receiver.yaml": bobPolicy}, 1, "", "reg.json"},
		{"no policy", map[string]string{"reg.json": string(regJSON), "env.json": string(env)}, 1, "", "receiver.yaml"},
		{"bad policy", map[string]string{"reg.json": string(regJSON), "env.json": string(env), "receiver.yaml": "version: 1\nstrict: maybe\n"}, 1, "", "strict"},
		{"no envelope", map[string]string{"reg.json": string(regJSON), "receiver.yaml": bobPolicy}, 1, "", "env.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(run, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(prog)
			cmd.Dir = run
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || out.String() != tc.stdout || !strings.Contains(errb.String(), tc.inStderr) || strings.Contains(errb.String(), "panic") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, out.String(), errb.String(), tc.code, tc.stdout, tc.inStderr)
			}
		})
	}
}
