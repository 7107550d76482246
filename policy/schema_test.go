package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compileSchema compiles policy.schema.json (draft 2020-12, checked against its
// metaschema by the compiler).
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	onDisk, err := os.ReadFile("policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, Schema()) {
		t.Fatal("Schema() differs from policy.schema.json")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(onDisk))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := doc.(map[string]any); m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("the schema does not declare draft 2020-12: %v", m["$schema"])
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// instance turns a policy document into the value a JSON Schema validator sees: JSON as
// it is (its first value), YAML through a plain YAML decoder.
func instance(doc []byte) (any, error) {
	doc = bytes.TrimPrefix(doc, []byte("\ufeff"))
	if t := bytes.TrimLeft(doc, " \t\r\n"); len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		var err error
		if doc, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func schemaAccepts(t testing.TB, sch *jsonschema.Schema, doc []byte) error {
	t.Helper()
	v, err := instance(doc)
	if err != nil {
		t.Fatalf("cannot read %q for the schema: %v", doc, err)
	}
	return sch.Validate(v)
}

// TestExamplesMatchSchema validates every example policy, and its effective form as
// 'trusthandoff policy check' prints it, against the schema.
func TestExamplesMatchSchema(t *testing.T) {
	sch := compileSchema(t)
	for name, doc := range exampleDocs(t) {
		t.Run(name, func(t *testing.T) {
			if err := schemaAccepts(t, sch, doc); err != nil {
				t.Fatalf("the schema rejects the example: %v", err)
			}
			p, err := Parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			eff, _ := p.MarshalJSON()
			if err := schemaAccepts(t, sch, eff); err != nil {
				t.Fatalf("the schema rejects the effective policy %s: %v", eff, err)
			}
		})
	}
}

// TestSchemaAgreesWithParse: each document is accepted by both the schema and Parse, or
// rejected by both.
func TestSchemaAgreesWithParse(t *testing.T) {
	sch := compileSchema(t)
	valid := map[string]string{
		"minimal":             "version: 1\n",
		"minimal JSON":        `{"version": 1}`,
		"everything":          "version: 1\nas: agent:m6wi+Xe/R=\nstrict: True\nskew: 0ms\ngrace: 1m\nmax_depth: 100\nrequire_capability: true\nttl: {read: 1h, write: 1h}\nactions: [{match: a, risk: read, review: false, deny: false}]\nunknown_actions: read\napprovals: {threshold: 100, ai_generated_write: false}\n",
		"skew at the maximum": "version: 1\nskew: 5m\n",
		"catch-all":           "version: 1\nactions: [{match: \"*\", review: true}]\n",
		"prefix":              "version: 1\nactions: [{match: \"send_*\", risk: write, review: true}]\n",
		"match only":          "version: 1\nactions: [{match: lookup}]\nunknown_actions: reject\n",
		"deny alone":          `{"version": 1, "actions": [{"match": "admin_*", "deny": true}]}`,
		"deny false, risk":    "version: 1\nactions: [{match: x, deny: false, risk: write}]\n",
		"punctuation":         "version: 1\nactions: [{match: \"tool:fs/read.v2-beta_(x)!\"}]\n",
		"empty lists":         "version: 1\nactions: []\nttl: {}\napprovals: {}\n",
		"max_depth zero":      "version: 1\nmax_depth: 0\n",
	}
	invalid := map[string]string{
		"empty object":            `{}`,
		"no version":              "strict: true\n",
		"version 2":               "version: 2\n",
		"version string":          `{"version": "1"}`,
		"top-level list":          `[{"version": 1}]`,
		"top-level string":        "hello\n",
		"top-level null":          "~\n",
		"unknown key":             "version: 1\nstrictness: true\n",
		"flag spelling":           "version: 1\nmax-depth: 3\n",
		"unknown ttl key":         "version: 1\nttl: {admin: 9s}\n",
		"unknown approvals key":   "version: 1\napprovals: {quorum: 2}\n",
		"unknown rule key":        "version: 1\nactions: [{match: x, allow: true}]\n",
		"strict string":           `{"version": 1, "strict": "true"}`,
		"strict yes":              "version: 1\nstrict: yes\n",
		"strict null":             "version: 1\nstrict:\n",
		"strict 1":                `{"version": 1, "strict": 1}`,
		"as empty":                `{"version": 1, "as": ""}`,
		"as padded":               `{"version": 1, "as": " agent:bob"}`,
		"as zero width":           "{\"version\": 1, \"as\": \"agent:b\u200bob\"}",
		"as number":               "version: 1\nas: 5\n",
		"skew bare number":        "version: 1\nskew: 30\n",
		"skew bare zero":          `{"version": 1, "skew": 0}`,
		"skew number string":      `{"version": 1, "skew": "30"}`,
		"skew compound":           "version: 1\nskew: 1m30s\n",
		"skew negative":           "version: 1\nskew: -1s\n",
		"skew fraction":           "version: 1\nskew: 1.5s\n",
		"skew leading zero":       "version: 1\nskew: 05s\n",
		"grace microseconds":      "version: 1\ngrace: 5us\n",
		"grace boolean":           "version: 1\ngrace: false\n",
		"max_depth negative":      "version: 1\nmax_depth: -1\n",
		"max_depth too large":     "version: 1\nmax_depth: 101\n",
		"max_depth string":        `{"version": 1, "max_depth": "5"}`,
		"max_depth fraction":      "version: 1\nmax_depth: 1.5\n",
		"ttl zero":                "version: 1\nttl: {read: 0s}\n",
		"ttl write zero":          "version: 1\nttl: {write: 0m}\n",
		"ttl not a mapping":       "version: 1\nttl: 900s\n",
		"ttl number":              "version: 1\nttl: {read: 900}\n",
		"actions mapping":         "version: 1\nactions: {match: x}\n",
		"rule string":             "version: 1\nactions: [x]\n",
		"match missing":           "version: 1\nactions: [{risk: read}]\n",
		"match empty":             `{"version": 1, "actions": [{"match": ""}]}`,
		"match star inside":       "version: 1\nactions: [{match: \"a*b\"}]\n",
		"match star first":        "version: 1\nactions: [{match: \"*a\"}]\n",
		"match two stars":         "version: 1\nactions: [{match: \"**\"}]\n",
		"match comma":             "version: 1\nactions: [{match: \"a,b\"}]\n",
		"match space":             "version: 1\nactions: [{match: \"a b\"}]\n",
		"match trailing space":    "version: 1\nactions: [{match: \"admin_* \"}]\n",
		"match look-alike":        "version: 1\nactions: [{match: \"rеad_*\", risk: read}]\n",
		"match number":            "version: 1\nactions: [{match: 5}]\n",
		"risk unknown":            "version: 1\nactions: [{match: x, risk: high}]\n",
		"risk empty":              `{"version": 1, "actions": [{"match": "x", "risk": ""}]}`,
		"review string":           "version: 1\nactions: [{match: x, review: \"yes\"}]\n",
		"deny number":             `{"version": 1, "actions": [{"match": "x", "deny": 1}]}`,
		"deny with risk":          "version: 1\nactions: [{match: x, deny: true, risk: read}]\n",
		"deny with review":        "version: 1\nactions: [{match: x, deny: true, review: true}]\n",
		"deny with review false":  "version: 1\nactions: [{match: x, deny: true, review: false}]\n",
		"unknown_actions allow":   "version: 1\nunknown_actions: allow\n",
		"unknown_actions empty":   `{"version": 1, "unknown_actions": ""}`,
		"unknown_actions boolean": "version: 1\nunknown_actions: true\n",
		"threshold zero":          "version: 1\napprovals: {threshold: 0}\n",
		"threshold too large":     "version: 1\napprovals: {threshold: 101}\n",
		"threshold string":        `{"version": 1, "approvals": {"threshold": "2"}}`,
		"ai write string":         `{"version": 1, "approvals": {"ai_generated_write": "true"}}`,
		"approvals list":          "version: 1\napprovals: [1]\n",
	}
	rules := func(n int) string {
		var b strings.Builder
		b.WriteString("version: 1\nactions:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {match: a%d}\n", i)
		}
		return b.String()
	}
	valid["most rules"] = rules(MaxRules)
	invalid["too many rules"] = rules(MaxRules + 1)
	for name, doc := range valid {
		t.Run("valid/"+name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err != nil {
				t.Errorf("Parse rejects it: %v", err)
			}
			if err := schemaAccepts(t, sch, []byte(doc)); err != nil {
				t.Errorf("the schema rejects it: %v", err)
			}
		})
	}
	for name, doc := range invalid {
		t.Run("invalid/"+name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err == nil {
				t.Error("Parse accepts it")
			}
			if err := schemaAccepts(t, sch, []byte(doc)); err == nil {
				t.Error("the schema accepts it")
			}
		})
	}
}

// TestParseStricterThanSchema lists what only the loader can check, as the schema's
// description says: Parse rejects each of these and the schema, which cannot express
// them, accepts them. A case the schema learns to reject belongs in
// TestSchemaAgreesWithParse.
func TestParseStricterThanSchema(t *testing.T) {
	sch := compileSchema(t)
	for name, doc := range map[string]string{
		"duplicate key":              `{"version": 1, "strict": true, "strict": false}`,
		"duplicate nested key":       `{"version": 1, "ttl": {"read": "9s", "read": "900s"}}`,
		"skew over 300s":             "version: 1\nskew: 301s\n",
		"grace over 60s":             "version: 1\ngrace: 2m\n",
		"ttl over 24h":               "version: 1\nttl: {read: 25h, write: 1h}\n",
		"ttl write longer than read": "version: 1\nttl: {read: 60s, write: 61s}\n",
		"unreachable rule":           "version: 1\nactions: [{match: \"read_*\"}, {match: read_secrets, deny: true}]\n",
		"duplicate match":            "version: 1\nactions: [{match: x}, {match: x, deny: true}]\n",
		"version 1.0":                `{"version": 1.0}`,
		"max_depth 5.0":              `{"version": 1, "max_depth": 5.0}`,
		"max_depth hex":              "version: 1\nmax_depth: 0x5\n",
		"max_depth underscore":       "version: 1\nmax_depth: 1_0\n",
		"YAML alias":                 "version: 1\nskew: &s 5s\ngrace: *s\n",
		"YAML second document":       "version: 1\n---\nversion: 1\n",
		"JSON trailing data":         "{\"version\": 1}\n{\"version\": 2}",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err == nil {
				t.Error("Parse accepts it")
			}
			if err := schemaAccepts(t, sch, []byte(doc)); err != nil {
				t.Errorf("the schema now rejects it (move the case to TestSchemaAgreesWithParse): %v", err)
			}
		})
	}
}
