package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// anyNonce is a replay store that never sees a replay, so one envelope can be verified in
// a loop: these benchmarks measure the gate's overhead, not the replay store.
type anyNonce struct{}

func (anyNonce) Record(context.Context, []byte, time.Time) (bool, error) { return true, nil }

func benchSetup(b *testing.B, chain bool) (*verify.Verifier, *gate.Gate, []byte) {
	f := newFixture(b)
	at := func() time.Time { return t0.Add(30 * time.Second) }
	v, err := verify.New(f.reg, anyNonce{}, verify.WithRevocations(f.revoked), verify.WithClock(at))
	if err != nil {
		b.Fatal(err)
	}
	env := seal(b, draft(f.alice, f.bob), f.alice.s, nil)
	if chain {
		_, _, env = f.chained(b, time.Hour, time.Hour)
	}
	return v, mustGate(b, v, f.revoked), env
}

// BenchmarkExecute compares an accepted handoff through the gate (watch, verify, re-check,
// expiry timer, run a no-op fn) with the verification alone.
func BenchmarkExecute(b *testing.B) {
	for _, bc := range []struct {
		name  string
		chain bool
	}{{"packet", false}, {"chain2", true}} {
		b.Run(bc.name+"/verify", func(b *testing.B) {
			v, _, env := benchSetup(b, bc.chain)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if d := v.Verify(ctx, env); !d.Accepted() {
					b.Fatal(d.Reason, d.Detail)
				}
			}
		})
		b.Run(bc.name+"/execute", func(b *testing.B) {
			_, g, env := benchSetup(b, bc.chain)
			ctx := context.Background()
			fn := func(context.Context, *verify.Decision) error { return nil }
			b.ReportAllocs()
			for b.Loop() {
				if d, err := g.Execute(ctx, env, fn); err != nil {
					b.Fatal(d.Reason, err)
				}
			}
		})
		// A server's steady state: other handoffs are running, so the revocation
		// subscription is already open and each Execute only arms on it.
		b.Run(bc.name+"/execute-shared", func(b *testing.B) {
			_, g, env := benchSetup(b, bc.chain)
			ctx := context.Background()
			hold, held := make(chan struct{}), make(chan struct{})
			go g.Execute(ctx, env, func(context.Context, *verify.Decision) error { close(held); <-hold; return nil })
			<-held
			defer close(hold)
			fn := func(context.Context, *verify.Decision) error { return nil }
			b.ReportAllocs()
			for b.Loop() {
				if d, err := g.Execute(ctx, env, fn); err != nil {
					b.Fatal(d.Reason, err)
				}
			}
		})
	}
}
