package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rule: the Python example (examples/python, standard library only) runs its planner →
// researcher → writer flow against a real sidecar: every step gets the decision the
// protocol says, including the wait for a human review and the receipt check.
func TestPythonExampleFlow(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("TRUSTHANDOFF_REQUIRE_PYTHON") == "1" {
			t.Fatal("python3 is required (TRUSTHANDOFF_REQUIRE_PYTHON=1) but not on PATH")
		}
		t.Skip("python3 not on PATH")
	}
	example, err := filepath.Abs(filepath.Join("..", "..", "examples", "python"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	tokens := filepath.Join(w.dir, "tokens.json")
	agents := map[string]map[string]string{}
	for role, name := range map[string]string{"planner": "alice", "researcher": "bob", "writer": "carol", "reviewer": "olga"} {
		tok := mustTH(t, 0, "", "token", "add", "--tokens", tokens, "--agent-id", w.ids[name]).json(t)["token"].(string)
		w.write(t, role+".token", tok+"\n")
		agents[role] = map[string]string{"agent_id": w.ids[name], "token_file": role + ".token"}
	}
	spec, _ := json.Marshal(agents)
	agentsFile := w.write(t, "agents.json", string(spec))
	s := startServe(t, nil, "--registry", w.reg, "--state", w.state, "--agent-tokens", tokens,
		"--keys", w.dir, "--log-level", "error")

	cmd := exec.Command(python, "flow.py", "--url", s.url, "--agents", agentsFile, "--wait", "60s")
	cmd.Dir = example
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("flow.py did not finish within 2 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("flow.py: %v\n%s\nsidecar: %s", err, out, s.stderr)
	}
	t.Logf("flow.py:\n%s", out)
	steps := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("flow.py printed a non-JSON line %q\n%s", line, out)
		}
		steps[m["step"].(string)] = m
	}
	for _, want := range []struct{ step, key, value string }{
		{"researcher.verify", "decision", "ACCEPT"},
		{"writer.verify", "reason", "human_review_required"},
		{"reviewer.approve", "packet_digest", ""},
		{"writer.verify_wait", "decision", "ACCEPT"},
		{"writer.receipt", "receipt_id", ""},
		{"planner.verify_receipt", "decision", "ACCEPT"},
		{"planner.verify_tampered", "decision", "REJECT"},
	} {
		m, ok := steps[want.step]
		if !ok {
			t.Fatalf("no %s step in\n%s", want.step, out)
		}
		if got, _ := m[want.key].(string); (want.value == "" && got == "") || (want.value != "" && got != want.value) {
			t.Fatalf("%s: %s = %v, want %q\n%s", want.step, want.key, m[want.key], want.value, out)
		}
	}
	if steps["writer.validity"]["valid"] != true || steps["done"]["ok"] != true {
		t.Fatalf("flow did not complete:\n%s", out)
	}
}
