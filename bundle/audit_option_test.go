package bundle_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// countingSink counts the events it is given.
type countingSink struct{ n int }

func (s *countingSink) Emit(context.Context, audit.Event) error { s.n++; return nil }

// TestVerifyRefusesAuditOption: verify's dry runs emit audit events, so a verify.WithAudit
// among the verifier options is refused before anything is verified, and nothing reaches
// the sink; the discarding sink is no audit and is accepted.
func TestVerifyRefusesAuditOption(t *testing.T) {
	w := newWorkflow(t)
	b := w.bundle(t)
	cases := []struct {
		name    string
		opts    []verify.Option
		wantErr error
	}{
		{"WithAudit", []verify.Option{verify.WithAudit(&countingSink{}, "node-1")}, bundle.ErrAuditOption},
		{"WithAudit among others", []verify.Option{verify.WithStrict(), verify.WithAudit(&countingSink{}, "")}, bundle.ErrAuditOption},
		{"WithAudit of Discard", []verify.Option{verify.WithAudit(audit.Discard(), "")}, nil},
		{"policy only", []verify.Option{verify.WithMaxDepth(4)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := w.verify(t, b, bundle.WithVerifierOptions(c.opts...))
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if c.wantErr != nil && rep != nil {
				t.Fatalf("a refused verification returned a report: %+v", rep)
			}
		})
	}
	sink := &countingSink{}
	if _, err := w.verify(t, b, bundle.WithVerifierOptions(verify.WithAudit(sink, ""))); !errors.Is(err, bundle.ErrAuditOption) {
		t.Fatal(err)
	}
	if sink.n != 0 {
		t.Fatalf("a refused bundle verification wrote %d audit events", sink.n)
	}
}
