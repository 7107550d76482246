package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/policy"
)

// TestPolicyFlagsOverride: the policy supplies the settings, and a flag given on the
// command line (even with its default value) overrides it; a flag not given does not.
func TestPolicyFlagsOverride(t *testing.T) {
	def := (*policy.Policy)(nil).Settings()
	with := func(edit func(s *policy.Settings)) policy.Settings { s := def; edit(&s); return s }
	full := "version: 1\nas: agent:bob\nstrict: true\nskew: 10s\ngrace: 5s\nmax_depth: 2\nrequire_capability: true\nttl: {read: 60s, write: 30s}\napprovals: {threshold: 3, ai_generated_write: true}\n"
	fromFull := policy.Settings{As: "agent:bob", Strict: true, Skew: 10 * time.Second, Grace: 5 * time.Second, MaxDepth: 2,
		RequireCapability: true, TTLRead: 60 * time.Second, TTLWrite: 30 * time.Second, ApprovalThreshold: 3, AIWriteApproval: true}
	cases := []struct {
		name   string
		policy string // "" for no --policy
		args   []string
		want   policy.Settings
	}{
		{"defaults", "", nil, def},
		{"flags without a policy", "", []string{"--as", "agent:x", "--strict", "--skew", "0s", "--grace", "1s", "--max-depth", "1", "--approvals", "2", "--require-capability", "--ai-write-approval"},
			with(func(s *policy.Settings) {
				*s = policy.Settings{As: "agent:x", Strict: true, Skew: 0, Grace: time.Second, MaxDepth: 1, RequireCapability: true,
					TTLRead: def.TTLRead, TTLWrite: def.TTLWrite, ApprovalThreshold: 2, AIWriteApproval: true}
			})},
		{"the policy alone", full, nil, fromFull},
		{"unrelated flags change nothing", full, []string{"--dry-run", "--registry", "r.json", "--max-bytes", "100", "--insecure-unsigned-approval"}, fromFull},
		{"--as", full, []string{"--as", "agent:carol"}, with2(fromFull, func(s *policy.Settings) { s.As = "agent:carol" })},
		{"--strict=false", full, []string{"--strict=false"}, with2(fromFull, func(s *policy.Settings) { s.Strict = false })},
		{"--skew at its default", full, []string{"--skew", "30s"}, with2(fromFull, func(s *policy.Settings) { s.Skew = 30 * time.Second })},
		{"--skew 0s", full, []string{"--skew", "0s"}, with2(fromFull, func(s *policy.Settings) { s.Skew = 0 })},
		{"--grace 0s", full, []string{"--grace=0s"}, with2(fromFull, func(s *policy.Settings) { s.Grace = 0 })},
		{"--max-depth at its default", full, []string{"--max-depth", "5"}, with2(fromFull, func(s *policy.Settings) { s.MaxDepth = 5 })},
		{"--approvals 1", full, []string{"--approvals", "1"}, with2(fromFull, func(s *policy.Settings) { s.ApprovalThreshold = 1 })},
		{"--require-capability=false", full, []string{"--require-capability=false"}, with2(fromFull, func(s *policy.Settings) { s.RequireCapability = false })},
		{"--ai-write-approval=false", full, []string{"--ai-write-approval=false"}, with2(fromFull, func(s *policy.Settings) { s.AIWriteApproval = false })},
		{"a policy weaker than the flags", "version: 1\n", []string{"--strict", "--as", "agent:z"}, with(func(s *policy.Settings) { s.Strict, s.As = true, "agent:z" })},
		{"a policy with only ttl", "version: 1\nttl: {read: 600s}\n", []string{"--strict"}, with(func(s *policy.Settings) { s.Strict, s.TTLRead = true, 600*time.Second })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *policy.Policy
			if tc.policy != "" {
				var err error
				if p, err = policy.Parse([]byte(tc.policy)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := parseVerifyFlags(t, tc.args).settings(p, changedFlags)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("settings\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
	// --as given empty is refused, not taken as "serve anyone".
	if _, err := parseVerifyFlags(t, []string{"--as", ""}).settings(nil, changedFlags); err == nil {
		t.Error(`--as "" accepted`)
	}
}

func with2(s policy.Settings, edit func(s *policy.Settings)) policy.Settings { edit(&s); return s }

// changedFlags is set by parseVerifyFlags to the parsed command's Changed.
var changedFlags func(string) bool

func parseVerifyFlags(t *testing.T, args []string) *verifyFlags {
	t.Helper()
	var f verifyFlags
	c := &cobra.Command{Use: "x"}
	c.Flags().Bool("dry-run", false, "")
	f.register(c)
	if err := c.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	changedFlags = c.Flags().Changed
	return &f
}

func examplePolicies(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.json"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "examples", "policy", pat))
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("found %d example policies, want at least 3", len(files))
	}
	return files
}

func TestPolicyCheck(t *testing.T) {
	for _, f := range examplePolicies(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := mustTH(t, 0, "", "policy", "check", f)
			out := r.json(t)
			if out["version"] != float64(1) || out["skew"] == nil || out["ttl"] == nil || out["approvals"] == nil {
				t.Fatalf("not an effective policy: %s", r.stdout)
			}
			// The output is itself a valid policy, and checks to the same output.
			again := mustTH(t, 0, r.stdout, "policy", "check", "-")
			if again.stdout != r.stdout {
				t.Fatalf("check of the effective policy differs:\n%s\n%s", r.stdout, again.stdout)
			}
		})
	}
	// Defaults are filled in.
	out := mustTH(t, 0, "version: 1\n", "policy", "check", "-").json(t)
	if out["skew"] != "30s" || out["grace"] != "0s" || out["max_depth"] != float64(5) || out["strict"] != false {
		t.Fatalf("defaults: %v", out)
	}
	if ttl := out["ttl"].(map[string]any); ttl["read"] != "900s" || ttl["write"] != "120s" {
		t.Fatalf("default ttl: %v", ttl)
	}

	dir := t.TempDir()
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown key":        {"version: 1\nmax-depth: 3\n", `:2:1: unknown key "max-depth" (did you mean "max_depth"?)`},
		"duplicate key":      {"version: 1\nstrict: true\nstrict: false\n", ":3:1: strict: duplicate key (first at line 2)"},
		"skew out of range":  {"version: 1\nskew: 301s\n", ":2:7: skew: 301s is more than the maximum 300s"},
		"wrong type":         {"version: 1\nstrict: yes\n", "strict: want true or false, got a string"},
		"no version":         {"strict: true\n", "version: missing"},
		"deny with review":   {"version: 1\nactions: [{match: x, deny: true, review: true}]\n", "actions[0]: a deny rule takes no risk or review"},
		"star in the middle": {"version: 1\nactions: [{match: \"a*b\"}]\n", "actions[0].match"},
		"unreachable rule":   {"version: 1\nactions: [{match: \"*\"}, {match: x, deny: true}]\n", "can never match"},
		"two documents":      {"version: 1\n---\nversion: 1\n", "second YAML document"},
		"bad JSON":           {`{"version": 1,}`, "JSON"},
		"empty":              {"", "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			os.WriteFile(f, []byte(tc.doc), 0o600)
			r := mustTH(t, 2, "", "policy", "check", f)
			if !strings.HasPrefix(r.stderr, "trusthandoff: error: "+f) || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr %q does not name the file and say %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Fatalf("stdout: %s", r.stdout)
			}
		})
	}
	mustTH(t, 2, "", "policy", "check", filepath.Join(dir, "missing.yaml"))
	mustTH(t, 2, "", "policy", "check", dir) // a directory
	mustTH(t, 2, "", "policy", "check")
	r := mustTH(t, 2, "version: 2\n", "policy", "check", "-")
	if !strings.Contains(r.stderr, "policy:1:10: version: unsupported version 2") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(mustTH(t, 0, "", "policy", "schema").stdout), &schema); err != nil || schema["$schema"] == nil {
		t.Fatalf("policy schema: %v %v", err, schema)
	}
}

func TestVerifyWithPolicy(t *testing.T) {
	w := newWorld(t)
	pol := func(doc string) string {
		w.n++
		return w.write(t, fmt.Sprintf("policy-%d.yaml", w.n), "version: 1\n"+doc)
	}

	// as: the policy binds the recipient; --as overrides it.
	forBob := pol("as: " + w.ids["bob"] + "\n")
	forCarol := pol("as: " + w.ids["carol"] + "\n")
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	wantReason(t, w.verify(t, 1, env, "--policy", forCarol), "REJECT", "wrong_recipient")
	wantReason(t, w.verify(t, 1, env, "--policy", forBob, "--as", w.ids["carol"]), "REJECT", "wrong_recipient")
	wantReason(t, w.verify(t, 0, env, "--policy", forCarol, "--as", w.ids["bob"]), "ACCEPT", "ok")
	env = sign(t, w, "alice", "bob", "--actions", "read_tickets")
	wantReason(t, w.verify(t, 0, env, "--policy", forBob), "ACCEPT", "ok")
	mustTH(t, 2, "", "verify", "--registry", w.reg, "--state", w.state, "--policy", forBob, "--as", "", env)

	// deny: policy_denied, whatever else the packet asks for.
	deny := pol("actions:\n  - {match: \"admin_*\", deny: true}\n  - {match: drop_table, deny: true}\n")
	for _, actions := range []string{"admin_reset", "read_tickets,admin_reset", "drop_table"} {
		wantReason(t, w.verify(t, 1, sign(t, w, "alice", "bob", "--actions", actions), "--policy", deny), "REJECT", "policy_denied")
	}
	wantReason(t, w.verify(t, 0, sign(t, w, "alice", "bob", "--actions", "administer,drop_tables"), "--policy", deny), "ACCEPT", "ok")

	// unknown_actions: reject: action_not_authorized for anything the catalogue does not list.
	reject := pol("actions:\n  - {match: read_tickets}\n  - {match: \"search_*\"}\nunknown_actions: reject\n")
	for _, actions := range []string{"send_email", "read_tickets,lookup", "Read_tickets", "read_ticket"} {
		wantReason(t, w.verify(t, 1, sign(t, w, "alice", "bob", "--actions", actions), "--policy", reject), "REJECT", "action_not_authorized")
	}
	wantReason(t, w.verify(t, 0, sign(t, w, "alice", "bob", "--actions", "read_tickets,search_kb"), "--policy", reject), "ACCEPT", "ok")

	// review: human_review_required, then ACCEPT once a human approved.
	review := pol("actions:\n  - {match: \"send_*\", risk: write, review: true}\n")
	env = sign(t, w, "alice", "bob", "--actions", "send_email")
	wantReason(t, w.verify(t, 1, env, "--policy", review), "REJECT", "human_review_required")
	wantReason(t, w.verify(t, 0, env), "ACCEPT", "ok") // without the policy nothing asks for review
	env = sign(t, w, "alice", "bob", "--actions", "read_tickets,send_sms")
	wantReason(t, w.verify(t, 1, env, "--policy", review), "REJECT", "human_review_required")
	approved := w.write(t, "policy-approved.json", mustTH(t, 0, "", "approve", "--key", w.key("olga"), "--envelope", env).stdout)
	wantReason(t, w.verify(t, 0, approved, "--policy", review), "ACCEPT", "ok")
	// --approvals overrides the policy's threshold: one approval is not two.
	two := pol("actions: [{match: \"send_*\", review: true}]\napprovals: {threshold: 2}\n")
	env = sign(t, w, "alice", "bob", "--actions", "send_email")
	approved = w.write(t, "policy-approved2.json", mustTH(t, 0, "", "approve", "--key", w.key("olga"), "--envelope", env).stdout)
	wantReason(t, w.verify(t, 1, approved, "--policy", two, "--dry-run"), "REJECT", "human_review_required")
	wantReason(t, w.verify(t, 0, approved, "--policy", two, "--approvals", "1"), "ACCEPT", "ok")

	// risk: in strict mode issue_refund is a write (its read window is too long) unless the
	// policy marks it read; --strict from the flag or from the file.
	// sign gives issue_refund the short write window by default (fail safe); a sender that
	// labels it read with the 900 s window is what strict mode must catch.
	safe := sign(t, w, "alice", "bob", "--actions", "issue_refund")
	wantReason(t, w.verify(t, 0, safe, "--strict", "--dry-run"), "ACCEPT", "ok")
	refund := sign(t, w, "alice", "bob", "--actions", "issue_refund", "--risk", "read", "--ttl", "900s")
	wantReason(t, w.verify(t, 1, refund, "--strict", "--dry-run"), "REJECT", "ttl_policy_mismatch")
	refundRead := pol("strict: true\nactions: [{match: issue_refund, risk: read}]\n")
	wantReason(t, w.verify(t, 1, refund, "--policy", pol("strict: true\n"), "--dry-run"), "REJECT", "ttl_policy_mismatch")
	wantReason(t, w.verify(t, 0, refund, "--policy", refundRead), "ACCEPT", "ok")
	lookalike := sign(t, w, "alice", "bob", "--actions", "ıssue_refund", "--risk", "read", "--ttl", "900s")
	wantReason(t, w.verify(t, 1, lookalike, "--policy", refundRead), "REJECT", "ttl_policy_mismatch")
	// the file's strict mode yields to --strict=false (the reference-compatible mode)
	refund2 := sign(t, w, "alice", "bob", "--actions", "issue_refund", "--risk", "read", "--ttl", "900s")
	wantReason(t, w.verify(t, 1, refund2, "--policy", pol("strict: true\n"), "--dry-run"), "REJECT", "ttl_policy_mismatch")
	wantReason(t, w.verify(t, 0, refund2, "--policy", pol("strict: true\n"), "--strict=false"), "ACCEPT", "ok")

	// skew from the file, and --skew over it.
	zeroSkew := pol("skew: 0s\n")
	env = sign(t, w, "alice", "bob", "--actions", "read_tickets")
	early := time.Now().Add(-10 * time.Second).UTC().Format(time.RFC3339Nano)
	wantReason(t, w.verify(t, 1, env, "--policy", zeroSkew, "--at", early), "REJECT", "issued_in_future")
	wantReason(t, w.verify(t, 0, env, "--policy", zeroSkew, "--at", early, "--skew", "30s"), "ACCEPT", "ok")

	// require_capability and max_depth from the file.
	wantReason(t, w.verify(t, 1, sign(t, w, "alice", "bob", "--actions", "read_tickets"), "--policy", pol("require_capability: true\n")), "REJECT", "capability_invalid")
	deep := sign(t, w, "alice", "bob", "--actions", "read_tickets", "--delegation-depth", "2")
	wantReason(t, w.verify(t, 1, deep, "--policy", pol("max_depth: 1\n"), "--dry-run"), "REJECT", "depth_exceeded")
	wantReason(t, w.verify(t, 0, deep, "--policy", pol("max_depth: 1\n"), "--max-depth", "2"), "ACCEPT", "ok")

	// A bad or missing policy file is a usage error, before anything is verified.
	env = sign(t, w, "alice", "bob", "--actions", "read_tickets")
	for _, bad := range []string{w.write(t, "bad-policy.yaml", "version: 1\nskew: 1h\n"), filepath.Join(w.dir, "none.yaml"), w.dir} {
		r := mustTH(t, 2, "", "verify", "--registry", w.reg, "--state", w.state, "--policy", bad, env)
		if !strings.Contains(r.stderr, "--policy") || r.stdout != "" {
			t.Fatalf("stderr %q stdout %q", r.stderr, r.stdout)
		}
	}
	wantReason(t, w.verify(t, 0, env), "ACCEPT", "ok") // the packet was not spent
}

func TestExecWithPolicy(t *testing.T) {
	w := newWorld(t)
	deny := w.write(t, "deny.yaml", "version: 1\nas: "+w.ids["bob"]+"\nactions: [{match: \"admin_*\", deny: true}]\n")
	for _, tc := range []struct {
		name, to, actions, reason string
		extra                     []string
	}{
		{"denied action", "bob", "admin_reset", "policy_denied", nil},
		{"another recipient", "carol", "read_tickets", "wrong_recipient", nil},
		{"--as overrides", "bob", "read_tickets", "wrong_recipient", []string{"--as", w.ids["carol"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := sign(t, w, "alice", tc.to, "--actions", tc.actions)
			args := append([]string{"exec", "--registry", w.reg, "--state", w.state, "--policy", deny}, tc.extra...)
			d := mustTH(t, 1, "", append(args, env, "--", "true")...).json(t)
			wantReason(t, d, "REJECT", tc.reason)
			if d["ran"] != false {
				t.Fatalf("the command ran: %v", d)
			}
		})
	}
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	d := mustTH(t, 0, "", "exec", "--registry", w.reg, "--state", w.state, "--policy", deny, env, "--", "true").json(t)
	if d["ran"] != true {
		t.Fatalf("the command did not run: %v", d)
	}
	mustTH(t, 2, "", "exec", "--registry", w.reg, "--state", w.state, "--policy", w.write(t, "bad.yaml", "version: 1\nbogus: 1\n"), env, "--", "true")
}
