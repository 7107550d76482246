package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// FuzzVerify: no input panics the pipeline, and every decision carries a known code.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	p := draft(fx.alice, fx.bob)
	f.Add(seal(f, p, fx.alice.s, nil))
	rev := draft(fx.alice, fx.bob)
	rev.Constraints = nil
	f.Add(seal(f, rev, fx.alice.s, nil, fx.approve(f, fx.olga, rev, approval.Approve)))
	files, _ := filepath.Glob("../testdata/vectors/packets_v0.4.0/*.json")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b) // the vector file itself: a JSON object that is not an envelope
		}
	}
	v, err := New(fx.reg, fx.replay, WithRevocations(fx.revoked))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := v.VerifyAt(context.Background(), data, t0.Add(time.Second))
		if d.Decision != Accept && d.Decision != Reject {
			t.Fatalf("decision %q", d.Decision)
		}
		if d.Accepted() != (d.Reason == reason.OK) || (!d.Accepted() && !slices.Contains(reason.All(), d.Reason)) {
			t.Fatalf("decision %s with reason %q", d.Decision, d.Reason)
		}
	})
}
