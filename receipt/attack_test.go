package receipt_test

import (
	"context"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// TestVerifyRejectsAttacks: receipts an attacker would craft, each rejected with a named
// reason (and a valid twin beside each edge case, so that the table cannot pass by
// rejecting everything).
func TestVerifyRejectsAttacks(t *testing.T) {
	type setup struct {
		f   *fixture
		env *packet.Envelope
		r   *receipt.Receipt
		opt receipt.VerifyOptions
	}
	// The fixture's packet is issued at t0 and expires at t0+900s; the skew is 30 s.
	expires := t0.Add(900 * time.Second)
	tests := []struct {
		name     string
		edit     func(t *testing.T, s *setup)
		code     reason.Code
		sentinel error
	}{
		{"signed by the packet's from_agent, naming itself", func(t *testing.T, s *setup) {
			s.r.Executor = s.f.alice.id
			resign(t, s.r, s.f.alice.s)
		}, reason.WrongExecutor, receipt.ErrWrongExecutor},
		{"signed by the packet's from_agent under the executor's name", func(t *testing.T, s *setup) {
			resign(t, s.r, s.f.alice.s)
		}, reason.PublicKeyMismatch, receipt.ErrExecutorKey},
		{"signed by an unregistered key under the executor's name", func(t *testing.T, s *setup) {
			resign(t, s.r, s.f.mallory.s)
		}, reason.PublicKeyMismatch, receipt.ErrExecutorKey},
		{"signed by a key rotated out before verification", func(t *testing.T, s *setup) {
			if err := s.f.reg.Rotate(s.f.bob.id, pub(newAgent(t)), t0.Add(55*time.Second), 0); err != nil {
				t.Fatal(err)
			}
		}, reason.PublicKeyMismatch, receipt.ErrExecutorKey},
		{"signed by a key rotated out, inside its overlap", func(t *testing.T, s *setup) {
			if err := s.f.reg.Rotate(s.f.bob.id, pub(newAgent(t)), t0.Add(55*time.Second), 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}, reason.OK, nil},
		{"executor revoked in the registry after it finished, before verification", func(t *testing.T, s *setup) {
			if err := s.f.reg.Revoke(s.f.bob.id, t0.Add(55*time.Second)); err != nil {
				t.Fatal(err)
			}
		}, reason.AgentRevoked, receipt.ErrExecutorKey},
		{"finished exactly at expiry", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt, s.f.now = expires, expires
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.OK, nil},
		{"finished 1 µs after expiry", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt, s.f.now = expires.Add(time.Microsecond), expires
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"TIMEOUT, finished a skew after expiry (cut off, then returned)", func(t *testing.T, s *setup) {
			p := params()
			p.Status, p.Reason = receipt.StatusTimeout, []byte("expired")
			p.FinishedAt, s.f.now = expires.Add(30*time.Second), expires.Add(30*time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.OK, nil},
		{"TIMEOUT, finished 1 µs more than a skew after expiry", func(t *testing.T, s *setup) {
			p := params()
			p.Status, p.Reason = receipt.StatusTimeout, []byte("expired")
			p.FinishedAt, s.f.now = expires.Add(30*time.Second+time.Microsecond), expires.Add(30*time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"OK, finished within a skew after expiry (only TIMEOUT may)", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt, s.f.now = expires.Add(time.Second), expires.Add(time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"finished 1 ns after expiry (hand-built: no such wire spelling)", func(t *testing.T, s *setup) {
			s.r.FinishedAt, s.f.now = expires.Add(time.Nanosecond), expires
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"started exactly a skew before issue", func(t *testing.T, s *setup) {
			p := params()
			p.StartedAt = t0.Add(-30 * time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.OK, nil},
		{"started 1 µs more than a skew before issue", func(t *testing.T, s *setup) {
			p := params()
			p.StartedAt = t0.Add(-30*time.Second - time.Microsecond)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"started 1 ns more than a skew before issue (hand-built)", func(t *testing.T, s *setup) {
			s.r.StartedAt = t0.Add(-30*time.Second - time.Nanosecond)
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"times in another location (hand-built)", func(t *testing.T, s *setup) {
			s.r.StartedAt = s.r.StartedAt.In(time.FixedZone("X", 3600))
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"finished before it started (hand-built)", func(t *testing.T, s *setup) {
			s.r.StartedAt, s.r.FinishedAt = s.r.FinishedAt, s.r.StartedAt
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"too many dependencies (hand-built)", func(t *testing.T, s *setup) {
			s.r.DependsOn = make([][32]byte, receipt.MaxDependsOn+1)
			for i := range s.r.DependsOn {
				s.r.DependsOn[i][0], s.r.DependsOn[i][1] = byte(i), byte(i>>8)
			}
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"one dependency named twice (hand-built)", func(t *testing.T, s *setup) {
			s.r.DependsOn = [][32]byte{{1}, {1}}
		}, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"depends on itself (a resolver answering with the receipt)", func(t *testing.T, s *setup) {
			p := params()
			p.DependsOn = [][32]byte{{9}}
			s.r = s.f.sign(t, s.f.bob, s.env, p)
			self := s.r
			s.opt.Dependencies = func([32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return self, s.env, true }
		}, reason.DependencyInvalid, receipt.ErrDependency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := &setup{f: f, env: f.handoff(t, f.bob)}
			s.r = f.sign(t, f.bob, s.env, params())
			tc.edit(t, s)
			expect(t, f.verifier(t).Verify(context.Background(), s.r, s.env, s.opt), tc.code, tc.sentinel)
		})
	}
}

// TestNonceReusedAcrossReceipts: a second receipt of the same executor key that reuses a
// spent nonce, for another packet, is a replay; another executor's key has its own nonces.
func TestNonceReusedAcrossReceipts(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	ctx := context.Background()
	env1, env2, env3 := f.handoff(t, f.bob), f.handoff(t, f.bob), f.handoff(t, f.carol)
	first := f.sign(t, f.bob, env1, params())
	expect(t, v.Verify(ctx, first, env1, receipt.VerifyOptions{}), reason.OK, nil)
	second := f.sign(t, f.bob, env2, params())
	second.Nonce = first.Nonce
	resign(t, second, f.bob.s)
	expect(t, v.Verify(ctx, second, env2, receipt.VerifyOptions{}), reason.ReplayDetected, receipt.ErrReplay)
	carols := f.sign(t, f.carol, env3, params())
	carols.Nonce = first.Nonce
	resign(t, carols, f.carol.s)
	expect(t, v.Verify(ctx, carols, env3, receipt.VerifyOptions{}), reason.OK, nil)
}

// TestDependencyDepthBound: a chain of depends_on deeper than the bound is refused rather
// than followed (digests rule out cycles; the bound caps the work of a long chain).
func TestDependencyDepthBound(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	byDigest := map[[32]byte]*receipt.Receipt{}
	resolve := func(d [32]byte) (*receipt.Receipt, *packet.Envelope, bool) {
		r, ok := byDigest[d]
		return r, env, ok
	}
	chain := func(n int) *receipt.Receipt {
		var last *receipt.Receipt
		for range n {
			p := params()
			p.StartedAt, p.FinishedAt = t0.Add(10*time.Second), t0.Add(10*time.Second)
			if last != nil {
				d, err := last.Digest()
				if err != nil {
					t.Fatal(err)
				}
				p.DependsOn = [][32]byte{d}
			}
			last = f.sign(t, f.bob, env, p)
			d, _ := last.Digest()
			byDigest[d] = last
		}
		return last
	}
	v := f.verifier(t)
	expect(t, v.Verify(context.Background(), chain(33), env, receipt.VerifyOptions{DryRun: true, Dependencies: resolve}), reason.OK, nil)
	expect(t, v.Verify(context.Background(), chain(34), env, receipt.VerifyOptions{DryRun: true, Dependencies: resolve}), reason.DependencyInvalid, receipt.ErrDependency)
}
