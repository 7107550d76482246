package receipt_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// BenchmarkVerify compares receipt verification with its floor, one crypto/ed25519.Verify
// of the same signed bytes (bare), in one run: std is the registry's standard-library
// verifier, fast its precomputed verifier (fastverify), parse includes Parse of the wire
// form. Each verification checks the outcome and asks a revocation store.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	env := f.handoff(b, f.bob)
	r := f.sign(b, f.bob, env, params())
	wire, err := r.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	msg, err := r.SigningBytes()
	if err != nil {
		b.Fatal(err)
	}
	opt := receipt.VerifyOptions{Outcome: []byte("result")}
	ctx := context.Background()
	run := func(b *testing.B, v *receipt.Verifier, parse bool) {
		b.ReportAllocs()
		for b.Loop() {
			rr := r
			if parse {
				if rr, err = receipt.Parse(wire); err != nil {
					b.Fatal(err)
				}
			}
			if err := v.Verify(ctx, rr, env, opt); err != nil {
				b.Fatal(err)
			}
		}
	}
	std, err := receipt.NewVerifier(f.reg, receipt.WithRevocations(f.revoked), receipt.WithClock(func() time.Time { return f.now }))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) {
		pub := ed25519.PublicKey(f.bob.s.Public())
		for b.Loop() {
			if !ed25519.Verify(pub, msg, r.Signature[:]) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("std", func(b *testing.B) { run(b, std, false) })
	b.Run("std+parse", func(b *testing.B) { run(b, std, true) })
	if err := f.reg.SetVerifierFactory(fastverify.New); err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) { run(b, std, false) })
	b.Run("fast+parse", func(b *testing.B) { run(b, std, true) })
}
