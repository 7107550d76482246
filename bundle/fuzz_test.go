package bundle_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/receipt"
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

// FuzzVerify: arbitrary bytes go through Parse, then Verify against a fixed registry and
// log key. Verify never panics, and whatever it reports as verified carries only signed
// content of the original workflow: every step's packet digest, receipt digest and
// carried outcome are the original's (a mutation may change unsigned bytes, never what
// was signed).
func FuzzVerify(f *testing.F) {
	w := newWorkflow(f)
	b := w.bundle(f)
	valid, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	rep, err := w.verify(f, b)
	if err != nil || !rep.OK {
		f.Fatalf("the seed bundle does not verify: %v", err)
	}
	packets, receipts, outcomes := map[string]bool{}, map[[32]byte]bool{}, map[[32]byte]bool{}
	for i, s := range rep.Steps {
		packets[s.Digest] = true
		r, err := receipt.Parse(b.Steps[i].Receipt)
		if err != nil {
			f.Fatal(err)
		}
		d, _ := r.Digest()
		receipts[d] = true
		outcomes[receipt.HashBytes(b.Steps[i].Outcome)] = true
	}
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte("Research the market"), []byte("Research the markets"), 1))
	f.Add(bytes.Replace(valid, []byte(`"steps": [`), []byte(`"steps": [{"envelope": {}}, `), 1))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fb, err := bundle.Parse(data, bundle.Limits{})
		if err != nil {
			return
		}
		rep, err := w.verify(t, fb)
		if err != nil {
			if !errors.Is(err, bundle.ErrInvalid) || rep == nil || rep.OK {
				t.Fatalf("failure without a report or ErrInvalid: %v", err)
			}
			return
		}
		if !rep.OK || len(rep.Steps) != len(fb.Steps) {
			t.Fatalf("nil error but report not OK: %+v", rep)
		}
		for i, s := range rep.Steps {
			if !packets[s.Digest] {
				t.Fatalf("step %d verified with a packet that was never signed: %s", i+1, s.Digest)
			}
			r, err := receipt.Parse(fb.Steps[i].Receipt)
			if err != nil {
				t.Fatalf("step %d verified with a receipt that does not parse: %v", i+1, err)
			}
			if d, _ := r.Digest(); !receipts[d] {
				t.Fatalf("step %d verified with a receipt that was never signed", i+1)
			}
			if o := fb.Steps[i].Outcome; o != nil && !outcomes[receipt.HashBytes(o)] {
				t.Fatalf("step %d verified with an outcome that was never receipted: %q", i+1, o)
			}
		}
	})
}
