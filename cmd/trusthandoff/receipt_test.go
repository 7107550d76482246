package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// handoffFile signs a read handoff from alice to `to` and writes it to the world.
func (w *world) handoffFile(t *testing.T, name, to string) string {
	t.Helper()
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids[to], "--intent", "summarize tickets", "--actions", "read_tickets").stdout
	return w.write(t, name, env)
}

func TestReceiptSignVerify(t *testing.T) {
	w := newWorld(t)
	env := w.handoffFile(t, "env.json", "bob")
	result := w.write(t, "result.txt", "3 tickets summarized\n")
	rc := mustTH(t, 0, "", "receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome-file", result).stdout
	var wire map[string]any
	if err := json.Unmarshal([]byte(rc), &wire); err != nil {
		t.Fatalf("receipt is not JSON: %v\n%s", err, rc)
	}
	if wire["version"] != "trusthandoff/receipt/v1" || wire["executor"] != w.ids["bob"] || wire["status"] != "OK" || wire["reason_hash"] != nil {
		t.Fatalf("receipt: %s", rc)
	}
	rfile := w.write(t, "receipt.json", rc)
	verifyArgs := []string{"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env}

	// A dry run first: nothing recorded.
	d := mustTH(t, 0, "", append(verifyArgs, "--dry-run", "--outcome-file", result, rfile)...).json(t)
	wantReason(t, d, "ACCEPT", "ok")
	if d["dry_run"] != true || d["executor"] != w.ids["bob"] || len(d["receipt_digest"].(string)) != 64 {
		t.Fatalf("decision: %v", d)
	}
	// A changed result is refused; the nonce is still unspent.
	wantReason(t, mustTH(t, 1, "", append(verifyArgs, "--outcome", "0 tickets", rfile)...).json(t), "REJECT", "outcome_mismatch")
	wantReason(t, mustTH(t, 0, "", append(verifyArgs, "--outcome-file", result, rfile)...).json(t), "ACCEPT", "ok")
	// The same receipt again, from stdin.
	wantReason(t, mustTH(t, 1, rc, append(verifyArgs, "-")...).json(t), "REJECT", "replay_detected")

	// A tampered receipt (status edited) does not verify.
	tampered := w.write(t, "tampered.json", strings.Replace(rc, `"status":"OK"`, `"status":"ERROR"`, 1))
	wantReason(t, mustTH(t, 1, "", append(verifyArgs, tampered)...).json(t), "REJECT", "invalid_signature")
	// Garbage is a REJECT, not a crash.
	wantReason(t, mustTH(t, 1, "{", append(verifyArgs, "-")...).json(t), "REJECT", "malformed_envelope")

	// carol cannot receipt bob's handoff.
	r := mustTH(t, 2, "", "receipt", "sign", "--key", w.key("carol"), "--envelope", env, "--outcome", "x")
	if !strings.Contains(r.stderr, "addressed to") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	// Against another handoff to bob, the receipt names the wrong packet.
	env2 := w.handoffFile(t, "env2.json", "bob")
	wantReason(t, mustTH(t, 1, "", "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env2, "--dry-run", rfile).json(t), "REJECT", "receipt_packet_mismatch")
	// A revoked executor.
	mustTH(t, 0, "", "revoke", "--state", w.state, "--agent-id", w.ids["bob"])
	wantReason(t, mustTH(t, 1, "", append(verifyArgs, "--dry-run", rfile)...).json(t), "REJECT", "agent_revoked")
}

func TestReceiptDependenciesAndTime(t *testing.T) {
	w := newWorld(t)
	env1 := w.handoffFile(t, "env1.json", "carol")
	env2 := w.handoffFile(t, "env2.json", "bob")
	now := time.Now().UTC()
	first := w.write(t, "first.json", mustTH(t, 0, "", "receipt", "sign", "--key", w.key("carol"), "--envelope", env1, "--outcome", "notes",
		"--started-at", now.Add(-time.Second).Format(time.RFC3339Nano), "--finished-at", now.Format(time.RFC3339Nano)).stdout)
	second := w.write(t, "second.json", mustTH(t, 0, "", "receipt", "sign", "--key", w.key("bob"), "--envelope", env2, "--outcome", "report",
		"--status", "PARTIAL", "--reason", "one source down", "--depends-on", first).stdout)
	args := []string{"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env2, "--dry-run"}
	wantReason(t, mustTH(t, 1, "", append(args, second)...).json(t), "REJECT", "dependency_invalid")
	wantReason(t, mustTH(t, 0, "", append(args, "--dependency", first+"="+env1, second)...).json(t), "ACCEPT", "ok")
	wantReason(t, mustTH(t, 0, "", append(args, "--dependency", first+"="+env1, "--outcome", "report", "--reason", "one source down", second)...).json(t), "ACCEPT", "ok")
	wantReason(t, mustTH(t, 1, "", append(args, "--dependency", first+"="+env1, "--outcome", "report", second)...).json(t), "REJECT", "outcome_mismatch")
	// The dependency given with the wrong handoff.
	wantReason(t, mustTH(t, 1, "", append(args, "--dependency", first+"="+env2, second)...).json(t), "REJECT", "dependency_invalid")

	// Finished after the packet expired (read handoffs live 900 s).
	late := w.write(t, "late.json", mustTH(t, 0, "", "receipt", "sign", "--key", w.key("carol"), "--envelope", env1, "--outcome", "x",
		"--finished-at", now.Add(time.Hour).Format(time.RFC3339)).stdout)
	wantReason(t, mustTH(t, 1, "", "receipt", "verify", "--registry", w.reg, "--envelope", env1, "--at", now.Add(time.Hour).Format(time.RFC3339), late).json(t),
		"REJECT", "execution_outside_validity")
	// --at implies a dry run: verifying as of a past instant spends nothing.
	d := mustTH(t, 0, "", "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env1, "--at", now.Add(time.Minute).Format(time.RFC3339), first).json(t)
	if d["dry_run"] != true {
		t.Fatalf("--at did not imply a dry run: %v", d)
	}
	wantReason(t, mustTH(t, 0, "", "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env1, first).json(t), "ACCEPT", "ok")
}

func TestReceiptAuditLog(t *testing.T) {
	w := newWorld(t)
	env := w.handoffFile(t, "env.json", "bob")
	rfile := w.write(t, "r.json", mustTH(t, 0, "", "receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome", "x").stdout)
	log := filepath.Join(w.dir, "audit.jsonl")
	args := []string{"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env, "--audit-log", log, rfile}
	mustTH(t, 0, "", args...)
	mustTH(t, 1, "", args...)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"`+audit.ReceiptAccepted+`"`) || !strings.Contains(lines[1], `"`+audit.ReceiptRejected+`"`) {
		t.Fatalf("audit log:\n%s", data)
	}
	mustTH(t, 0, "", "audit", "verify", log)
}

func TestReceiptUsage(t *testing.T) {
	w := newWorld(t)
	env := w.handoffFile(t, "env.json", "bob")
	for name, args := range map[string][]string{
		"no subcommand":        {"receipt"},
		"unknown subcommand":   {"receipt", "frobnicate"},
		"sign without outcome": {"receipt", "sign", "--key", w.key("bob"), "--envelope", env},
		"sign bad status":      {"receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome", "x", "--status", "DONE"},
		"sign bad time":        {"receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome", "x", "--started-at", "yesterday"},
		"sign both outcomes":   {"receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome", "x", "--outcome-file", env},
		"verify no envelope":   {"receipt", "verify", "--registry", w.reg, "-"},
		"verify bad pair":      {"receipt", "verify", "--registry", w.reg, "--envelope", env, "--dependency", "x", "-"},
		"verify reason alone":  {"receipt", "verify", "--registry", w.reg, "--envelope", env, "--reason", "x", "-"},
		"verify huge skew":     {"receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env, "--skew", "1h", "-"},
	} {
		t.Run(name, func(t *testing.T) { mustTH(t, 2, "{}", args...) })
	}
}

// TestReceiptVerifyHostileInput: receipts an attacker would craft are REJECTs (exit 1)
// with a named reason, never a crash or a usage error.
func TestReceiptVerifyHostileInput(t *testing.T) {
	w := newWorld(t)
	env := w.handoffFile(t, "env.json", "bob")
	rc := strings.TrimSpace(mustTH(t, 0, "", "receipt", "sign", "--key", w.key("bob"), "--envelope", env, "--outcome", "x").stdout)
	byAlice := strings.TrimSpace(mustTH(t, 0, "", "receipt", "sign", "--key", w.key("alice"), "--agent-id", w.ids["bob"], "--envelope", env, "--outcome", "x").stdout)
	var m map[string]any
	if err := json.Unmarshal([]byte(rc), &m); err != nil {
		t.Fatal(err)
	}
	deps := make([]string, 257)
	for i := range deps {
		deps[i] = strings.Repeat("0", 61) + string("0123456789abcdef"[i/256]) + string("0123456789abcdef"[i/16%16]) + string("0123456789abcdef"[i%16])
	}
	m["depends_on"] = deps
	tooMany, _ := json.Marshal(m)
	finished := m["finished_at"].(string)
	cases := []struct {
		name, input string
		reason      string
	}{
		{"signed by the sender under the executor's name", byAlice, "public_key_mismatch"},
		{"unknown field", strings.Replace(rc, `{`, `{"verified":true,`, 1), "malformed_envelope"},
		{"duplicate key", strings.Replace(rc, `"status":"OK"`, `"status":"OK","status":"ERROR"`, 1), "malformed_envelope"},
		{"257 dependencies", string(tooMany), "malformed_envelope"},
		{"nested arrays", strings.Replace(rc, `"depends_on":[]`, `"depends_on":[[[[]]]]`, 1), "malformed_envelope"},
		{"nanosecond time", strings.Replace(rc, `"finished_at":"`+finished+`"`, `"finished_at":"`+strings.TrimSuffix(finished, "Z")+`.000000001Z"`, 1), "malformed_envelope"},
		{"over the size limit", `{"x":"` + strings.Repeat("a", 70000) + `"}`, "malformed_envelope"},
		{"not an object", `[]`, "malformed_envelope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.input == rc {
				t.Fatal("the attack did not change the receipt")
			}
			d := mustTH(t, 1, tc.input, "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env, "--dry-run", "-").json(t)
			wantReason(t, d, "REJECT", tc.reason)
		})
	}
	// The genuine receipt verifies (the cases above start from a valid one).
	wantReason(t, mustTH(t, 0, rc, "receipt", "verify", "--registry", w.reg, "--state", w.state, "--envelope", env, "--dry-run", "-").json(t), "ACCEPT", "ok")
}
