package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// demoWant is the expected verdict of each of the demo's six steps.
var demoWant = []struct{ decision, reason string }{
	{"ACCEPT", "ok"},
	{"REJECT", "invalid_signature"},
	{"REJECT", "replay_detected"},
	{"ACCEPT", "ok"},
	{"REJECT", "outcome_mismatch"},
	{"REJECT", "replay_detected"},
}

// demoEnv is the environment without NO_COLOR, plus extra.
func demoEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NO_COLOR=") && !strings.HasPrefix(kv, "TERM=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func runDemoBinary(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"demo"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestDemoJSON(t *testing.T) {
	out, code := runDemoBinary(t, demoEnv(), "--json")
	if code != 0 {
		t.Fatalf("demo --json: exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(demoWant) {
		t.Fatalf("demo --json printed %d lines, want %d:\n%s", len(lines), len(demoWant), out)
	}
	for i, line := range lines {
		var s struct {
			Step       int    `json:"step"`
			Decision   string `json:"decision"`
			Reason     string `json:"reason"`
			AsExpected bool   `json:"as_expected"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		if s.Step != i+1 || s.Decision != demoWant[i].decision || s.Reason != demoWant[i].reason || !s.AsExpected {
			t.Errorf("step %d: got %+v, want %s %s", i+1, s, demoWant[i].decision, demoWant[i].reason)
		}
	}
}

func TestDemoText(t *testing.T) {
	cases := []struct {
		name string
		env  []string
	}{
		{"plain when stdout is a pipe", demoEnv()},
		{"plain with NO_COLOR", demoEnv("NO_COLOR=1")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := runDemoBinary(t, c.env)
			if code != 0 {
				t.Fatalf("demo: exit %d\n%s", code, out)
			}
			checkDemoText(t, out)
			if strings.Contains(out, "\x1b[") {
				t.Errorf("plain output has escape sequences:\n%q", out)
			}
		})
	}
}

// checkDemoText checks one line per step, in order, each with its verdict.
func checkDemoText(t *testing.T, out string) {
	t.Helper()
	var steps []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) > 2 && line[0] >= '1' && line[0] <= '9' && line[1] == '.' {
			steps = append(steps, line)
		}
	}
	if len(steps) != len(demoWant) {
		t.Fatalf("demo printed %d step lines, want %d:\n%s", len(steps), len(demoWant), out)
	}
	for i, line := range steps {
		plain := strings.NewReplacer("\x1b[1;32m", "", "\x1b[1;31m", "", "\x1b[0m", "").Replace(line)
		want := demoWant[i].decision
		if want == "REJECT" {
			want += " " + demoWant[i].reason
		}
		if !strings.HasSuffix(plain, " "+want) {
			t.Errorf("step %d: %q does not end with %q", i+1, plain, want)
		}
	}
	if !strings.Contains(out, "all six outcomes as expected") {
		t.Errorf("no summary line:\n%s", out)
	}
}

// TestReadmeQuickstartStartsWithTheDemo: the README's Quickstart opens with the demo, and
// the walkthrough script (make quickstart) runs it first.
func TestReadmeQuickstartStartsWithTheDemo(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Quickstart")
	_, rest, ok2 := strings.Cut(rest, "```sh\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no sh block under Quickstart")
	}
	if strings.TrimSpace(block) != "go run ./cmd/trusthandoff demo" {
		t.Errorf("the Quickstart's first command is %q, not the demo", block)
	}
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "quickstart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `"$bin" demo`+"\n") {
		t.Error("scripts/quickstart.sh does not run the demo")
	}
}
