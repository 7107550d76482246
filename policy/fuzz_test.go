package policy

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics; it fails with an *Error or returns a policy whose
// effective form the schema accepts, reads back to the same policy, and encodes stably.
// A document Parse accepts is accepted by the schema too.
func FuzzParse(f *testing.F) {
	for _, doc := range exampleDocs(f) {
		f.Add(doc)
	}
	for _, doc := range []string{
		"version: 1\n", `{"version": 1}`, "version: 1\nactions: [{match: \"*\", review: true}]\n",
		"version: 1\nttl: {read: 1500ms, write: 1s}\n", "version: 1\nskew: &s 5s\ngrace: *s\n",
		"{\"version\": 1, \"as\": \"a\", \"as\": \"b\"}", "version: 1\n---\n", "version: 1\nmax_depth: 0x5\n",
		"version: !!float 1\n", "? version\n: 1\n",
	} {
		f.Add([]byte(doc))
	}
	sch := compileSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is not an *Error: %T %v", err, err)
			}
			return
		}
		if err := schemaAccepts(t, sch, data); err != nil {
			t.Fatalf("Parse accepts %q, the schema does not: %v", data, err)
		}
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaAccepts(t, sch, b); err != nil {
			t.Fatalf("the schema rejects the effective policy %s: %v", b, err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON) of %q: %v\n%s", data, err, b)
		}
		if q.Settings() != p.Settings() {
			t.Fatalf("settings changed: %+v -> %+v", p.Settings(), q.Settings())
		}
		for _, a := range []string{"", "x", "read_tickets", "send_email", "admin_x", "issue_refund"} {
			if p.ActionRule(a) != q.ActionRule(a) {
				t.Fatalf("ActionRule(%q) changed: %+v -> %+v", a, p.ActionRule(a), q.ActionRule(a))
			}
		}
		if b2, _ := q.MarshalJSON(); string(b2) != string(b) {
			t.Fatalf("unstable encoding:\n%s\n%s", b, b2)
		}
	})
}
