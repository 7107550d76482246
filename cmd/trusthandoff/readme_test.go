package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCLISnippet runs the README's "Using the CLI" block with the built binary, so the
// documented commands and their documented outcomes cannot drift from the code.
func TestReadmeCLISnippet(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Using the CLI")
	if !ok {
		t.Fatal("README has no 'Using the CLI' section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no sh block under 'Using the CLI'")
	}
	if _, err := exec.LookPath("jq"); err != nil && strings.Contains(block, "jq") {
		t.Skip("the README snippet uses jq, which is not installed")
	}
	dir := t.TempDir()
	// The snippet builds ./trusthandoff itself; use the binary under test instead.
	script := strings.Replace(block, "go build -o trusthandoff ./cmd/trusthandoff", "cp "+binary+" ./trusthandoff", 1)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
	out, _ := cmd.CombinedOutput() // the last verify exits 1 on purpose
	got := string(out)
	for _, want := range []string{`"decision": "ACCEPT"`, `"reason": "replay_detected"`} {
		if !strings.Contains(got, want) {
			t.Fatalf("README snippet output lacks %s:\n%s", want, got)
		}
	}
	// One decision per verify the snippet runs, each as its comment says.
	var wants []string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "./trusthandoff verify ") {
			_, comment, _ := strings.Cut(line, "# ")
			wants = append(wants, strings.TrimRight(strings.Fields(comment)[0], ",;."))
		}
	}
	if n := strings.Count(got, `"decision"`); n != len(wants) || len(wants) == 0 {
		t.Fatalf("expected %d decisions, got %d:\n%s", len(wants), n, got)
	}
	rest = got
	for _, w := range wants {
		i := strings.Index(rest, `"decision": "`)
		if !strings.HasPrefix(rest[i+len(`"decision": "`):], w) {
			t.Fatalf("decision %q expected next:\n%s", w, rest)
		}
		rest = rest[i+1:]
	}
}
