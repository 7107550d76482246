package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/verify"
)

func TestParseDefaults(t *testing.T) {
	for name, doc := range map[string]string{
		"yaml":            "version: 1\n",
		"json":            `{"version": 1}`,
		"json with BOM":   "\ufeff{\"version\": 1}",
		"yaml with BOM":   "\ufeffversion: 1\n",
		"comments":        "# a policy\nversion: 1 # the format\n",
		"document marker": "---\nversion: 1\n...\n",
		"tab-indented":    "{\n\t\"version\": 1\n}\n",
		"explicit":        "version: 1\nstrict: false\nskew: 30s\ngrace: 0s\nmax_depth: 5\nrequire_capability: false\nttl: {read: 900s, write: 120s}\nactions: []\napprovals: {threshold: 1, ai_generated_write: false}\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			want := Settings{Skew: 30 * time.Second, MaxDepth: 5, TTLRead: 900 * time.Second, TTLWrite: 120 * time.Second, ApprovalThreshold: 1}
			if got := p.Settings(); got != want {
				t.Fatalf("settings %+v, want %+v", got, want)
			}
			if got := (*Policy)(nil).Settings(); got != want {
				t.Fatalf("nil policy settings %+v", got)
			}
			if r := p.ActionRule("delete_everything"); r != (verify.ActionRule{}) {
				t.Fatalf("an empty catalogue has a rule: %+v", r)
			}
		})
	}
}

func TestParseSettings(t *testing.T) {
	doc := `version: 1
as: agent:bob
strict: true
skew: 0s
grace: 60s
max_depth: 0
require_capability: true
ttl: {read: 2m, write: 1500ms}
approvals: {threshold: 3, ai_generated_write: true}
`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{As: "agent:bob", Strict: true, Skew: 0, Grace: 60 * time.Second, MaxDepth: 0,
		RequireCapability: true, TTLRead: 2 * time.Minute, TTLWrite: 1500 * time.Millisecond,
		ApprovalThreshold: 3, AIWriteApproval: true}
	if got := p.Settings(); got != want {
		t.Fatalf("settings %+v, want %+v", got, want)
	}
	// The same policy in JSON.
	pj, err := Parse([]byte(`{"version":1,"as":"agent:bob","strict":true,"skew":"0s","grace":"60s","max_depth":0,
		"require_capability":true,"ttl":{"read":"2m","write":"1500ms"},"approvals":{"threshold":3,"ai_generated_write":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := pj.Settings(); got != want {
		t.Fatalf("JSON settings %+v, want %+v", got, want)
	}
}

func TestActionRule(t *testing.T) {
	p, err := Parse([]byte(`version: 1
actions:
  - {match: "admin_*", deny: true}
  - {match: send_email, risk: write, review: true}
  - {match: "send_*", risk: write}
  - {match: issue_refund, risk: read}
  - {match: lookup}
unknown_actions: reject
`))
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]verify.ActionRule{
		"admin_":        {Deny: true},
		"admin_drop":    {Deny: true},
		"send_email":    {Risk: "write", Review: true},
		"send_emails":   {Risk: "write"}, // exact names are exact
		"send_sms":      {Risk: "write"},
		"issue_refund":  {Risk: "read"},
		"lookup":        {},             // known: the classifier decides its risk
		"Admin_drop":    {Reject: true}, // case matters
		"admin":         {Reject: true}, // the prefix is admin_
		" admin_drop":   {Reject: true}, // padded
		"ıssue_refund":  {Reject: true}, // a look-alike is not the listed action
		"issue_refund ": {Reject: true}, // trailing space
		"read_tickets":  {Reject: true}, // unlisted
		"":              {Reject: true},
	} {
		if got := p.ActionRule(action); got != want {
			t.Errorf("ActionRule(%q) = %+v, want %+v", action, got, want)
		}
	}
	for unknown, want := range map[string]verify.ActionRule{
		"":       {},
		"write":  {Risk: "write"},
		"read":   {Risk: "read"},
		"reject": {Reject: true},
	} {
		doc := "version: 1\nactions: [{match: known, risk: read}]\n"
		if unknown != "" {
			doc += "unknown_actions: " + unknown + "\n"
		}
		p := mustParse(t, doc)
		if got := p.ActionRule("unknown"); got != want {
			t.Errorf("unknown_actions %q: %+v, want %+v", unknown, got, want)
		}
		if got := p.ActionRule("known"); got != (verify.ActionRule{Risk: "read"}) {
			t.Errorf("unknown_actions %q changed a listed action: %+v", unknown, got)
		}
	}
	if got := (*Policy)(nil).ActionRule("x"); got != (verify.ActionRule{}) {
		t.Errorf("nil policy: %+v", got)
	}
	// "*" alone matches everything, the empty name included.
	all := mustParse(t, "version: 1\nactions: [{match: \"*\", review: true}]\nunknown_actions: reject\n")
	for _, a := range []string{"", "x", "read_tickets", "*"} {
		if got := all.ActionRule(a); got != (verify.ActionRule{Review: true}) {
			t.Errorf("* on %q: %+v", a, got)
		}
	}
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q): %v", doc, err)
	}
	return p
}

// TestParseErrors: every invalid document is refused with an *Error naming the field
// and the line. Several attacker- and typo-style cases per rule.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int    // 0: not checked
		want      string // substring of the message
	}{
		// the document
		{"empty", "", 0, "empty"},
		{"only a comment", "# nothing\n", 0, "empty"},
		{"null document", "~\n", 1, "want a mapping, got null"},
		{"a list", "- version: 1\n", 1, "want a mapping, got a list"},
		{"a JSON list", `[{"version": 1}]`, 1, "want a mapping, got a list"},
		{"a string", "hello\n", 1, "want a mapping"},
		{"invalid UTF-8", "version: 1\nas: \"\xff\"\n", 0, "UTF-8"},
		{"too large", "version: 1\n" + strings.Repeat("#", MaxSize), 0, "larger than"},
		{"YAML syntax", "version: 1\nttl: {read: 900s\n", 0, "YAML"},
		{"JSON syntax", "{\"version\": 1,\n \"strict\": tru}", 2, "JSON"},
		{"JSON trailing comma", `{"version": 1,}`, 0, "JSON"},
		{"JSON truncated", `{"version": 1`, 0, "JSON"},
		{"YAML flow map read as JSON", "{version: 1}", 1, "read as JSON"},
		// one document
		{"second YAML document", "version: 1\n---\nversion: 1\n", 2, "second YAML document"},
		{"empty second document", "version: 1\n---\n", 2, "second YAML document"},
		{"broken second document", "version: 1\n--- [\n", 2, "YAML"},
		{"second JSON value", "{\"version\": 1}\n{\"version\": 1}", 2, "data after the document"},
		{"JSON trailing garbage", `{"version": 1} x`, 1, "data after"},
		{"JSON then YAML", "{\"version\": 1}\nstrict: true\n", 2, "data after"},
		// version
		{"no version", "strict: true\n", 1, "version: missing"},
		{"version 2", "version: 2\n", 1, "unsupported version 2"},
		{"version 0", `{"version": 0}`, 1, "unsupported version 0"},
		{"version string", "version: \"1\"\n", 1, "want an integer, got a string"},
		{"version float", "version: 1.0\n", 1, "got a number with a fraction"},
		{"version JSON float", `{"version": 1.0}`, 1, "got a number with a fraction"},
		{"version hex", "version: 0x1\n", 1, "plain decimal"},
		{"version huge", "version: 99999999999999999999999\n", 1, "outside"},
		// keys
		{"unknown key", "version: 1\nstrictness: true\n", 2, `unknown key "strictness"`},
		{"flag spelling", "version: 1\nmax-depth: 3\n", 2, `did you mean "max_depth"`},
		{"case", "version: 1\nStrict: true\n", 2, `did you mean "strict"`},
		{"unknown nested key", "version: 1\nttl: {read: 9s, admin: 9s}\n", 2, `ttl: unknown key "admin"`},
		{"unknown rule key", "version: 1\nactions: [{match: x, allow: true}]\n", 2, `actions[0]: unknown key "allow"`},
		{"unknown approvals key", "version: 1\napprovals: {quorum: 2}\n", 2, `unknown key "quorum"`},
		{"duplicate key", "version: 1\nstrict: true\nstrict: false\n", 3, "duplicate key (first at line 2)"},
		{"duplicate JSON key", "{\"version\": 1,\n\"as\": \"agent:a\",\n\"as\": \"agent:b\"}", 3, "as: duplicate key"},
		{"duplicate nested key", "version: 1\nttl:\n  read: 9s\n  read: 900s\n", 4, "ttl.read: duplicate key"},
		{"duplicate rule key", "version: 1\nactions:\n  - match: x\n    deny: false\n    deny: true\n", 5, "actions[0].deny: duplicate key"},
		{"duplicate version", "version: 1\nversion: 1\n", 2, "duplicate key"},
		{"non-string key", "version: 1\n1: x\n", 2, "keys must be plain strings"},
		{"merge key", "version: 1\n<<: {strict: true}\n", 2, "keys must be plain strings"},
		{"anchor", "version: 1\nttl: &t {read: 9s}\n", 2, "anchors"},
		{"alias", "version: 1\nskew: &s 5s\ngrace: *s\n", 2, "anchors"},
		{"alias only", "version: 1\nactions:\n  - &r {match: x}\n", 3, "anchors"},
		{"custom tag", "version: 1\nskew: !dur 5s\n", 2, "got a value tagged !dur"},
		{"timestamp", "version: 1\nas: 2026-04-01\n", 2, "got a value tagged !!timestamp"},
		{"tagged mapping", "version: 1\nttl: !custom {read: 9s}\n", 2, "tag !custom"},
		// types
		{"strict yes", "version: 1\nstrict: yes\n", 2, "want true or false, got a string"},
		{"strict 1", `{"version": 1, "strict": 1}`, 1, "want true or false, got an integer"},
		{"strict null", "version: 1\nstrict:\n", 2, "got null"},
		{"strict string", `{"version": 1, "strict": "true"}`, 1, "want true or false"},
		{"as number", "version: 1\nas: 12\n", 2, "as: want a string, got an integer"},
		{"actions map", "version: 1\nactions: {match: x}\n", 2, "want a list of rules"},
		{"actions null", "version: 1\nactions:\n", 2, "got null"},
		{"rule is a string", "version: 1\nactions: [send_*]\n", 2, "actions[0]: want a mapping, got a string"},
		{"ttl string", "version: 1\nttl: 900s\n", 2, "ttl: want a mapping"},
		{"approvals list", "version: 1\napprovals: [1]\n", 2, "approvals: want a mapping"},
		{"review string", "version: 1\nactions: [{match: x, review: \"true\"}]\n", 2, "actions[0].review: want true or false"},
		{"threshold float", "version: 1\napprovals: {threshold: 1.5}\n", 2, "approvals.threshold: want an integer"},
		{"max_depth string", "version: 1\nmax_depth: \"5\"\n", 2, "max_depth: want an integer"},
		{"max_depth underscore", "version: 1\nmax_depth: 1_0\n", 2, "plain decimal"},
		{"max_depth octal", "version: 1\nmax_depth: 0o7\n", 2, "plain decimal"},
		{"max_depth plus", "version: 1\nmax_depth: +5\n", 2, "plain decimal"},
		// ranges
		{"max_depth negative", "version: 1\nmax_depth: -1\n", 2, "outside 0..100"},
		{"max_depth huge", "version: 1\nmax_depth: 101\n", 2, "outside 0..100"},
		{"max_depth overflow", `{"version": 1, "max_depth": 9223372036854775808}`, 1, "outside"},
		{"threshold zero", "version: 1\napprovals: {threshold: 0}\n", 2, "approvals.threshold: 0 is outside 1..100"},
		{"threshold negative", "version: 1\napprovals: {threshold: -2}\n", 2, "outside 1..100"},
		{"threshold huge", "version: 1\napprovals: {threshold: 1000}\n", 2, "outside"},
		// durations
		{"skew too large", "version: 1\nskew: 301s\n", 2, "skew: 301s is more than the maximum 300s"},
		{"skew in minutes", "version: 1\nskew: 6m\n", 2, "more than the maximum"},
		{"skew overflow", "version: 1\nskew: 9999999999999999999h\n", 2, "more than the maximum"},
		{"skew int overflow", "version: 1\nskew: 99999999999h\n", 2, "more than the maximum"},
		{"skew negative", "version: 1\nskew: -1s\n", 2, "not a duration"},
		{"skew bare number", "version: 1\nskew: 30\n", 2, `give it a unit, like "30s"`},
		{"skew bare zero", "version: 1\nskew: 0\n", 2, "give it a unit"},
		{"skew compound", "version: 1\nskew: 1m30s\n", 2, "not a duration"},
		{"skew fraction", "version: 1\nskew: 1.5s\n", 2, "not a duration"},
		{"skew microseconds", "version: 1\nskew: 5us\n", 2, "not a duration"},
		{"skew no number", "version: 1\nskew: s\n", 2, "not a duration"},
		{"skew leading zero", "version: 1\nskew: 05s\n", 2, "not a duration"},
		{"skew plus", "version: 1\nskew: +5s\n", 2, "not a duration"},
		{"skew spaces", "version: 1\nskew: \" 5s\"\n", 2, "not a duration"},
		{"skew boolean", "version: 1\nskew: true\n", 2, "want a duration"},
		{"grace too large", "version: 1\ngrace: 61s\n", 2, "grace: 61s is more than the maximum 60s"},
		{"grace 2m", "version: 1\ngrace: 2m\n", 2, "more than the maximum"},
		{"ttl zero", "version: 1\nttl: {read: 0s}\n", 2, "ttl.read: 0s: must be more than zero"},
		{"ttl write zero", "version: 1\nttl: {write: 0ms}\n", 2, "ttl.write"},
		{"ttl too long", "version: 1\nttl: {read: 25h}\n", 2, "more than the maximum 86400s"},
		{"ttl write longer than read", "version: 1\nttl: {read: 60s, write: 61s}\n", 2, "ttl.write: 61s is longer than the read TTL 60s"},
		{"ttl write longer than default read", "version: 1\nttl: {write: 901s}\n", 2, "longer than the read TTL 900s"},
		{"ttl read below default write", "version: 1\nttl: {read: 60s}\n", 2, "ttl.write: 120s is longer"},
		// as
		{"as empty", "version: 1\nas: \"\"\n", 2, "as: is empty"},
		{"as padded", "version: 1\nas: \" agent:bob\"\n", 2, "space"},
		{"as trailing space", "version: 1\nas: \"agent:bob \"\n", 2, "space"},
		{"as newline", "version: 1\nas: \"agent:bob\\n\"\n", 2, "control"},
		{"as zero width", "version: 1\nas: \"agent:b\u200bob\"\n", 2, "U+200B"},
		{"as full width", "version: 1\nas: \"agent:ｂob\"\n", 2, "non-ASCII"},
		{"as null", "version: 1\nas: null\n", 2, "got null"},
		// actions
		{"match missing", "version: 1\nactions: [{risk: read}]\n", 2, "actions[0]: missing match"},
		{"match empty", "version: 1\nactions: [{match: \"\"}]\n", 2, "actions[0].match: is empty"},
		{"match star inside", "version: 1\nactions: [{match: \"send_*_email\"}]\n", 2, "* may only end"},
		{"match star first", "version: 1\nactions: [{match: \"*_email\"}]\n", 2, "* may only end"},
		{"match two stars", "version: 1\nactions: [{match: \"send**\"}]\n", 2, "* may only end"},
		{"match stars only", "version: 1\nactions: [{match: \"**\"}]\n", 2, "* may only end"},
		{"match comma", "version: 1\nactions: [{match: \"read,write\"}]\n", 2, "comma"},
		{"match comma prefix", "version: 1\nactions: [{match: \"a,*\"}]\n", 2, "comma"},
		{"match space", "version: 1\nactions: [{match: \"admin_* \"}]\n", 2, "* may only end"},
		{"match leading space", "version: 1\nactions: [{match: \" admin_*\"}]\n", 2, "space"},
		{"match tab", "version: 1\nactions: [{match: \"admin\\t*\"}]\n", 2, "control"},
		{"match look-alike", "version: 1\nactions: [{match: \"rеad_*\", risk: read}]\n", 2, "U+0435"},
		{"match zero width", "version: 1\nactions: [{match: \"read\u200b\", risk: read}]\n", 2, "non-ASCII"},
		{"match number", "version: 1\nactions: [{match: 5}]\n", 2, "want a string"},
		{"risk unknown", "version: 1\nactions: [{match: x, risk: high}]\n", 2, `actions[0].risk: "high" is not read or write`},
		{"risk upper case", "version: 1\nactions: [{match: x, risk: Write}]\n", 2, "not read or write"},
		{"risk empty", "version: 1\nactions: [{match: x, risk: \"\"}]\n", 2, "not read or write"},
		{"deny with risk", "version: 1\nactions: [{match: x, deny: true, risk: read}]\n", 2, "a deny rule takes no risk or review"},
		{"deny with review", "version: 1\nactions: [{match: x, review: true, deny: true}]\n", 2, "deny rule"},
		{"deny with review false", "version: 1\nactions: [{match: x, review: false, deny: true}]\n", 2, "deny rule"},
		{"duplicate match", "version: 1\nactions:\n  - {match: x, risk: read}\n  - {match: x, deny: true}\n", 4, `actions[1]: "x" can never match: actions[0] "x" (line 3)`},
		{"shadowed exact", "version: 1\nactions:\n  - {match: \"read_*\", risk: read}\n  - {match: read_secrets, deny: true}\n", 4, "can never match"},
		{"shadowed prefix", "version: 1\nactions:\n  - {match: \"read_*\"}\n  - {match: \"read_s*\", deny: true}\n", 4, "can never match"},
		{"after catch-all", "version: 1\nactions:\n  - {match: \"*\", review: true}\n  - {match: admin, deny: true}\n", 4, "can never match"},
		{"same prefix twice", "version: 1\nactions:\n  - {match: \"a*\"}\n  - {match: \"a*\"}\n", 4, "can never match"},
		// unknown_actions
		{"unknown_actions allow", "version: 1\nunknown_actions: allow\n", 2, `"allow" is not write, read or reject`},
		{"unknown_actions empty", "version: 1\nunknown_actions: \"\"\n", 2, "is not write, read or reject"},
		{"unknown_actions bool", "version: 1\nunknown_actions: true\n", 2, "want a string"},
		{"unknown_actions upper", "version: 1\nunknown_actions: REJECT\n", 2, "not write, read or reject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("not an *Error: %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.line != 0 && pe.Line != tc.line {
				t.Errorf("error %q at line %d, want line %d", err, pe.Line, tc.line)
			}
			if !strings.HasPrefix(err.Error(), "policy") {
				t.Errorf("error %q does not start with policy", err)
			}
		})
	}
}

// TestShadowingIsDirectional: a narrower rule before a wider one is fine.
func TestShadowingIsDirectional(t *testing.T) {
	p := mustParse(t, `version: 1
actions:
  - {match: read_secrets, deny: true}
  - {match: "read_s*", review: true}
  - {match: "read_*", risk: read}
  - {match: "read", risk: read}
  - {match: "*", risk: write}
`)
	for a, want := range map[string]verify.ActionRule{
		"read_secrets": {Deny: true},
		"read_ssh":     {Review: true},
		"read_x":       {Risk: "read"},
		"read":         {Risk: "read"},
		"readx":        {Risk: "write"},
	} {
		if got := p.ActionRule(a); got != want {
			t.Errorf("%s: %+v, want %+v", a, got, want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "p.yaml", Line: 3, Column: 7, Field: "skew", Msg: "bad"}, "p.yaml:3:7: skew: bad"},
		{Error{Line: 3, Field: "skew", Msg: "bad"}, "policy:3: skew: bad"},
		{Error{Msg: "empty"}, "policy: empty"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "p.yaml")
	os.WriteFile(good, []byte("version: 1\nas: agent:bob\n"), 0o600)
	p, err := Load(good)
	if err != nil || p.Settings().As != "agent:bob" {
		t.Fatalf("Load: %v %v", p, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nskew: 1h\n"), 0o600)
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2:7: skew: ") {
		t.Fatalf("Load of a bad file: %v", err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "none.yaml"), "a directory": dir} {
		if _, err := Load(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte("version: 1\n"+strings.Repeat("# padding\n", MaxSize/10+1)), 0o600)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file over MaxSize: %v", err)
	}
}

// TestMarshalRoundTrip: the effective policy reads back as the same policy, and its
// encoding is stable.
func TestMarshalRoundTrip(t *testing.T) {
	docs := exampleDocs(t)
	docs["rules"] = []byte("version: 1\nactions: [{match: \"*\", review: true}]\nttl: {write: 1500ms}\n")
	docs["nil"] = nil
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var p *Policy
			if doc != nil {
				p = mustParse(t, string(doc))
			}
			b1, err := p.MarshalJSON() // json.Marshal writes null for a nil pointer
			if err != nil {
				t.Fatal(err)
			}
			q, err := Parse(b1)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v\n%s", err, b1)
			}
			if q.Settings() != p.Settings() {
				t.Fatalf("settings changed: %+v -> %+v", p.Settings(), q.Settings())
			}
			b2, _ := json.Marshal(q)
			if string(b1) != string(b2) {
				t.Fatalf("unstable:\n%s\n%s", b1, b2)
			}
		})
	}
}

// exampleDocs reads every example policy; it fails when there are none.
func exampleDocs(t testing.TB) map[string][]byte {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml", "*.json"} {
		m, _ := filepath.Glob(filepath.Join("..", "examples", "policy", pat))
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("found %d example policies in examples/policy, want at least 3", len(files))
	}
	docs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = b
	}
	return docs
}

func TestExamplesParse(t *testing.T) {
	var json int
	for name, doc := range exampleDocs(t) {
		if strings.HasSuffix(name, ".json") {
			json++
		}
		if _, err := Parse(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if json == 0 {
		t.Error("no JSON example")
	}
}

// TestParseHostile: deep nesting and large documents are refused quickly, never a panic.
func TestParseHostile(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"deep YAML flow":   {"version: 1\nactions: " + strings.Repeat("[", 200000), "depth"},
		"deep YAML blocks": {strings.Repeat("- ", 50000) + "x\n", "depth"},
		"deep JSON":        {`{"version": 1, "actions": ` + strings.Repeat("[", 200000), "nested too deeply"},
		"deep JSON closed": {`{"version": 1, "actions": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}", "nested too deeply"},
		"many keys":        {"version: 1\n" + strings.Repeat("a: 1\n", 50000), `unknown key "a"`},
		"many rules":       {"version: 1\nactions:\n" + strings.Repeat("- {match: a}\n", 5000), "at most 1000"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
