package bundle_test

import (
	"bytes"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/bundle"
)

// FuzzParse: Parse never panics, and what it accepts Marshal writes in a form that parses
// to the same bundle (Marshal is a fixed point after one round).
func FuzzParse(f *testing.F) {
	f.Add(sampleBundle(f, nil))
	f.Add(sampleBundle(f, func(m map[string]string) { m["audit"] = `[]`; m["outcome"] = `null` }))
	f.Add([]byte(`{"version": "trusthandoff/bundle/v1", "workflow": {"kind": "correlation_id", "id": "c"}, "created_at": "2026-04-01T12:10:00+02:00", "steps": [{"envelope": {}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Parse(data, bundle.Limits{})
		if err != nil {
			return
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed bundle: %v", err)
		}
		b2, err := bundle.Parse(out, bundle.Limits{MaxBytes: 4 * len(out)})
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
		}
		out2, err := b2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable (%v):\n%s\n%s", err, out, out2)
		}
	})
}
