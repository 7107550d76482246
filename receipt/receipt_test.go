package receipt_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

func TestRoundTrip(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	p := params()
	p.Reason = []byte(`{"note":"partial"}`)
	p.Status = receipt.StatusPartial
	dep := f.sign(t, f.bob, env, params())
	dd, err := dep.Digest()
	if err != nil {
		t.Fatal(err)
	}
	p.DependsOn = [][32]byte{dd}
	r := f.sign(t, f.bob, env, p)
	wire, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := receipt.Parse(wire)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v\n%s", err, wire)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip changed the receipt:\n%+v\n%+v", back, r)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, wire) {
		t.Fatalf("Marshal is not stable:\n%s\n%s", wire, again)
	}
	want, _ := approval.Digest(env.Packet, packet.Rule04)
	if back.PacketDigest != want {
		t.Fatal("packet_digest is not approval.Digest of the packet")
	}
	for _, field := range []string{`"version":"trusthandoff/receipt/v1"`, `"signature_algo":"ed25519"`, `"status":"PARTIAL"`,
		`"outcome_hash":"sha256:`, `"reason_hash":"sha256:`, `"depends_on":["` + hex.EncodeToString(dd[:]) + `"]`,
		`"started_at":"2026-04-01T12:00:10Z"`, `"packet_digest":"` + hex.EncodeToString(want[:]) + `"`} {
		if !strings.Contains(string(wire), field) {
			t.Errorf("wire form lacks %s:\n%s", field, wire)
		}
	}
	msg, _ := r.SigningBytes()
	if !bytes.HasPrefix(msg, []byte("trusthandoff/receipt/v1\n{")) || bytes.Contains(msg, []byte(`"signature":`)) {
		t.Fatalf("signing bytes are not domain separated or contain the signature: %s", msg)
	}
	d1, _ := r.Digest()
	r.Signature[0] ^= 1
	if d2, _ := r.Digest(); d1 != d2 {
		t.Fatal("the digest depends on the signature")
	}
}

func TestSignRefuses(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	tests := []struct {
		name     string
		executor string
		p        func(*receipt.Params)
		sentinel error
	}{
		{"another agent than the receiver", f.carol.id, nil, receipt.ErrWrongExecutor},
		{"no finish time", "", func(p *receipt.Params) { p.FinishedAt = time.Time{} }, nil},
		{"finished before started", "", func(p *receipt.Params) { p.FinishedAt = p.StartedAt.Add(-time.Second) }, receipt.ErrMalformed},
		{"unknown status", "", func(p *receipt.Params) { p.Status = "DONE" }, receipt.ErrMalformed},
		{"too many dependencies", "", func(p *receipt.Params) { p.DependsOn = make([][32]byte, receipt.MaxDependsOn+1) }, receipt.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.p != nil {
				tc.p(&p)
			}
			_, err := receipt.Sign(f.bob.s, tc.executor, env.Packet, packet.Rule04, p)
			if err == nil {
				t.Fatal("Sign succeeded")
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v does not wrap %v", err, tc.sentinel)
			}
		})
	}
}

// expect checks that err carries code and wraps sentinel.
func expect(t *testing.T, err error, code reason.Code, sentinel error) {
	t.Helper()
	if code == reason.OK {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Verify accepted; want %s", code)
	}
	var re *reason.Error
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("Verify: %v (code %s), want code %s", err, reason.Of(err, ""), code)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("Verify: %v does not wrap %v", err, sentinel)
	}
}

func TestVerify(t *testing.T) {
	type setup struct {
		f   *fixture
		env *packet.Envelope
		r   *receipt.Receipt
		opt receipt.VerifyOptions
		v   *receipt.Verifier
	}
	tests := []struct {
		name     string
		edit     func(t *testing.T, s *setup)
		code     reason.Code
		sentinel error
	}{
		{"valid", nil, reason.OK, nil},
		{"valid with the outcome given", func(t *testing.T, s *setup) { s.opt.Outcome = []byte("result") }, reason.OK, nil},
		{"valid at the last instant of the packet", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt = t0.Add(900 * time.Second)
			s.f.now = p.FinishedAt
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.OK, nil},
		{"valid with a precomputed key", func(t *testing.T, s *setup) {
			if err := s.f.reg.SetVerifierFactory(fastverify.New); err != nil {
				t.Fatal(err)
			}
		}, reason.OK, nil},
		{"valid for a 0.3.3 packet", func(t *testing.T, s *setup) {
			s.env = s.f.handoff(t, s.f.bob, packet.WithRule(packet.Rule033))
			r, err := receipt.Sign(s.f.bob.s, "", s.env.Packet, packet.Rule033, params())
			if err != nil {
				t.Fatal(err)
			}
			s.r = r
		}, reason.OK, nil},
		{"no envelope", func(t *testing.T, s *setup) { s.env = nil }, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"hand-built receipt with a bad version", func(t *testing.T, s *setup) { s.r.Version = "v0" }, reason.MalformedEnvelope, receipt.ErrMalformed},
		{"another packet", func(t *testing.T, s *setup) {
			other := s.f.handoff(t, s.f.bob)
			other.Packet.PacketID = s.env.Packet.PacketID
			s.env = other
		}, reason.ReceiptPacketMismatch, receipt.ErrPacketMismatch},
		{"another packet id", func(t *testing.T, s *setup) { s.r.PacketID = "other" }, reason.ReceiptPacketMismatch, receipt.ErrPacketMismatch},
		{"the packet edited after signing", func(t *testing.T, s *setup) { s.env.Packet.Intent = "export every record" }, reason.ReceiptPacketMismatch, receipt.ErrPacketMismatch},
		{"executor is not the receiver", func(t *testing.T, s *setup) {
			s.r.Executor = s.f.carol.id
			resign(t, s.r, s.f.carol.s)
		}, reason.WrongExecutor, receipt.ErrWrongExecutor},
		{"executor not registered", func(t *testing.T, s *setup) {
			s.env = s.f.handoff(t, s.f.mallory)
			s.r = s.f.sign(t, s.f.mallory, s.env, params())
		}, reason.UnknownAgent, receipt.ErrExecutorKey},
		{"someone else's key under the executor's name", func(t *testing.T, s *setup) { resign(t, s.r, s.f.carol.s) }, reason.PublicKeyMismatch, receipt.ErrExecutorKey},
		{"executor revoked in the registry", func(t *testing.T, s *setup) {
			if err := s.f.reg.Revoke(s.f.bob.id, t0); err != nil {
				t.Fatal(err)
			}
		}, reason.AgentRevoked, receipt.ErrExecutorKey},
		{"status changed", func(t *testing.T, s *setup) { s.r.Status = receipt.StatusError }, reason.InvalidSignature, receipt.ErrSignature},
		{"outcome hash changed", func(t *testing.T, s *setup) { s.r.OutcomeHash[0] ^= 1 }, reason.InvalidSignature, receipt.ErrSignature},
		{"dependency list changed", func(t *testing.T, s *setup) { s.r.DependsOn = [][32]byte{{1}} }, reason.InvalidSignature, receipt.ErrSignature},
		{"signature changed", func(t *testing.T, s *setup) { s.r.Signature[5] ^= 1 }, reason.InvalidSignature, receipt.ErrSignature},
		{"started before the packet was issued", func(t *testing.T, s *setup) {
			p := params()
			p.StartedAt = t0.Add(-31 * time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"started within the skew before issue", func(t *testing.T, s *setup) {
			p := params()
			p.StartedAt = t0.Add(-30 * time.Second)
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.OK, nil},
		{"finished after the packet expired", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt = t0.Add(900*time.Second + time.Microsecond)
			s.f.now = p.FinishedAt
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.ExecutionOutsideValidity, receipt.ErrOutsideValidity},
		{"finished after expiry, within the grace", func(t *testing.T, s *setup) {
			p := params()
			p.FinishedAt = t0.Add(910 * time.Second)
			s.f.now = p.FinishedAt
			s.r = s.f.sign(t, s.f.bob, s.env, p)
			s.v = s.f.verifier(t, receipt.WithGrace(10*time.Second))
		}, reason.OK, nil},
		{"finished in the verifier's future", func(t *testing.T, s *setup) { s.f.now = t0.Add(19 * time.Second) }, reason.IssuedInFuture, receipt.ErrStale},
		{"older than the maximum age", func(t *testing.T, s *setup) {
			s.f.now = t0.Add(50*time.Second + receipt.DefaultMaxAge + time.Millisecond)
		}, reason.Expired, receipt.ErrStale},
		{"old receipt verified as of its time", func(t *testing.T, s *setup) {
			s.f.now = t0.Add(48 * time.Hour)
			s.opt.At = t0.Add(time.Minute)
		}, reason.OK, nil},
		{"wrong outcome", func(t *testing.T, s *setup) { s.opt.Outcome = []byte("resulT") }, reason.OutcomeMismatch, receipt.ErrOutcomeMismatch},
		{"empty outcome is an outcome", func(t *testing.T, s *setup) { s.opt.Outcome = []byte{} }, reason.OutcomeMismatch, receipt.ErrOutcomeMismatch},
		{"reason given, receipt has none", func(t *testing.T, s *setup) {
			s.opt.Outcome, s.opt.Reason = []byte("result"), []byte("why")
		}, reason.OutcomeMismatch, receipt.ErrOutcomeMismatch},
		{"receipt has a reason, none given", func(t *testing.T, s *setup) {
			p := params()
			p.Reason = []byte("why")
			s.r = s.f.sign(t, s.f.bob, s.env, p)
			s.opt.Outcome = []byte("result")
		}, reason.OutcomeMismatch, receipt.ErrOutcomeMismatch},
		{"wrong reason", func(t *testing.T, s *setup) {
			p := params()
			p.Reason = []byte("why")
			s.r = s.f.sign(t, s.f.bob, s.env, p)
			s.opt.Outcome, s.opt.Reason = []byte("result"), []byte("why not")
		}, reason.OutcomeMismatch, receipt.ErrOutcomeMismatch},
		{"right reason", func(t *testing.T, s *setup) {
			p := params()
			p.Reason = []byte("why")
			s.r = s.f.sign(t, s.f.bob, s.env, p)
			s.opt.Outcome, s.opt.Reason = []byte("result"), []byte("why")
		}, reason.OK, nil},
		{"executor revoked in the store", func(t *testing.T, s *setup) {
			if err := s.f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: s.f.bob.id}); err != nil {
				t.Fatal(err)
			}
		}, reason.AgentRevoked, receipt.ErrRevoked},
		{"revocation store down", func(t *testing.T, s *setup) { s.v = s.f.verifier(t, receipt.WithRevocations(failingStore{})) }, reason.StoreUnavailable, receipt.ErrStoreUnavailable},
		{"replay store down", func(t *testing.T, s *setup) { s.v = s.f.verifier(t, receipt.WithReplay(failingStore{})) }, reason.StoreUnavailable, receipt.ErrStoreUnavailable},
		{"audit sink down", func(t *testing.T, s *setup) { s.v = s.f.verifier(t, receipt.WithAudit(&memSink{fail: true}, "test")) }, reason.StoreUnavailable, receipt.ErrStoreUnavailable},
		{"dependency without a resolver", func(t *testing.T, s *setup) {
			p := params()
			p.DependsOn = [][32]byte{{7}}
			s.r = s.f.sign(t, s.f.bob, s.env, p)
		}, reason.DependencyInvalid, receipt.ErrDependency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := &setup{f: f, env: f.handoff(t, f.bob)}
			s.r = f.sign(t, f.bob, s.env, params())
			s.v = f.verifier(t)
			if tc.edit != nil {
				tc.edit(t, s)
			}
			expect(t, s.v.Verify(context.Background(), s.r, s.env, s.opt), tc.code, tc.sentinel)
		})
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	r := f.sign(t, f.bob, env, params())
	v := f.verifier(t)
	ctx := context.Background()

	// A forged copy (status changed, same nonce) arrives first: rejected, nonce not burnt.
	forged := *r
	forged.Status = receipt.StatusError
	expect(t, v.Verify(ctx, &forged, env, receipt.VerifyOptions{}), reason.InvalidSignature, receipt.ErrSignature)
	// A dry run checks everything and records nothing, any number of times.
	for range 2 {
		expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{DryRun: true}), reason.OK, nil)
	}
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.OK, nil)
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.ReplayDetected, receipt.ErrReplay)
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{DryRun: true}), reason.ReplayDetected, receipt.ErrReplay)
	// Another receipt of the same packet has its own nonce.
	expect(t, v.Verify(ctx, f.sign(t, f.bob, env, params()), env, receipt.VerifyOptions{}), reason.OK, nil)
	// The nonce is remembered as long as any verifier could accept the receipt.
	f.now = r.FinishedAt.Add(receipt.MaxMaxAge)
	long, err := receipt.NewVerifier(f.reg, receipt.WithReplay(f.replay), receipt.WithMaxAge(receipt.MaxMaxAge),
		receipt.WithClock(func() time.Time { return f.now }))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, long.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.ReplayDetected, receipt.ErrReplay)
}

func TestRotatedExecutor(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	bob2 := newAgent(t)
	if err := f.reg.Rotate(f.bob.id, pub(bob2), t0, 0); err != nil {
		t.Fatal(err)
	}
	v := f.verifier(t)
	ctx := context.Background()
	// The old key is no longer valid; the new key speaks for bob under bob's id.
	expect(t, v.Verify(ctx, f.sign(t, f.bob, env, params()), env, receipt.VerifyOptions{}), reason.PublicKeyMismatch, receipt.ErrExecutorKey)
	r, err := receipt.Sign(bob2.s, f.bob.id, env.Packet, packet.Rule04, params())
	if err != nil {
		t.Fatal(err)
	}
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.OK, nil)
}

func TestDependencies(t *testing.T) {
	ctx := context.Background()
	type chain struct {
		f         *fixture
		first     *receipt.Receipt
		firstEnv  *packet.Envelope
		second    *receipt.Receipt
		secondEnv *packet.Envelope
		resolver  receipt.DependencyResolver
	}
	build := func(t *testing.T) *chain {
		f := newFixture(t)
		c := &chain{f: f}
		// alice → carol (research), then alice → bob (write, using carol's result).
		c.firstEnv = f.handoff(t, f.carol)
		p := params()
		p.FinishedAt = t0.Add(20 * time.Second)
		c.first = f.sign(t, f.carol, c.firstEnv, p)
		d, err := c.first.Digest()
		if err != nil {
			t.Fatal(err)
		}
		c.secondEnv = f.handoff(t, f.bob)
		p = params()
		p.StartedAt = t0.Add(25 * time.Second)
		p.DependsOn = [][32]byte{d}
		c.second = f.sign(t, f.bob, c.secondEnv, p)
		c.resolver = func(digest [32]byte) (*receipt.Receipt, *packet.Envelope, bool) {
			if digest == d {
				return c.first, c.firstEnv, true
			}
			return nil, nil, false
		}
		return c
	}
	tests := []struct {
		name string
		edit func(t *testing.T, c *chain)
		code reason.Code
	}{
		{"chain verifies", nil, reason.OK},
		{"dependency missing", func(t *testing.T, c *chain) {
			c.resolver = func([32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return nil, nil, false }
		}, reason.DependencyInvalid},
		{"resolver returns another receipt", func(t *testing.T, c *chain) {
			other := c.f.sign(t, c.f.carol, c.firstEnv, params())
			c.resolver = func([32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return other, c.firstEnv, true }
		}, reason.DependencyInvalid},
		{"dependency tampered", func(t *testing.T, c *chain) {
			// The tampered dependency has another digest, so it is not the one named.
			c.first.Status = receipt.StatusError
		}, reason.DependencyInvalid},
		{"dependency executor revoked", func(t *testing.T, c *chain) {
			if err := c.f.revoked.Revoke(ctx, revocation.Entry{Kind: revocation.KindAgent, ID: c.f.carol.id}); err != nil {
				t.Fatal(err)
			}
		}, reason.DependencyInvalid},
		{"dependency against the wrong packet", func(t *testing.T, c *chain) {
			c.resolver = func([32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return c.first, c.secondEnv, true }
		}, reason.DependencyInvalid},
		{"dependency finished after this execution started", func(t *testing.T, c *chain) {
			p := params()
			p.StartedAt = t0.Add(15 * time.Second)
			p.FinishedAt = t0.Add(60 * time.Second)
			c.first = c.f.sign(t, c.f.carol, c.firstEnv, p)
			d, _ := c.first.Digest()
			p = params()
			p.DependsOn = [][32]byte{d}
			p.StartedAt = t0.Add(20 * time.Second)
			c.second = c.f.sign(t, c.f.bob, c.secondEnv, p)
			c.resolver = func([32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return c.first, c.firstEnv, true }
		}, reason.DependencyInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := build(t)
			if tc.edit != nil {
				tc.edit(t, c)
			}
			v := c.f.verifier(t)
			// The dependency was verified (and its nonce spent) when it arrived.
			if tc.code == reason.OK {
				expect(t, v.Verify(ctx, c.first, c.firstEnv, receipt.VerifyOptions{}), reason.OK, nil)
			}
			err := v.Verify(ctx, c.second, c.secondEnv, receipt.VerifyOptions{Dependencies: c.resolver})
			if tc.code == reason.OK {
				expect(t, err, reason.OK, nil)
				return
			}
			expect(t, err, tc.code, receipt.ErrDependency)
			var de *receipt.DependencyError
			if !errors.As(err, &de) || de.Digest != c.second.DependsOn[0] {
				t.Fatalf("error %v does not name the dependency", err)
			}
		})
	}
}

func TestAuditEvents(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	r := f.sign(t, f.bob, env, params())
	sink := &memSink{}
	v := f.verifier(t, receipt.WithAudit(sink, "node-1"))
	ctx := context.Background()
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.OK, nil)
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.ReplayDetected, receipt.ErrReplay)
	if len(sink.events) != 2 {
		t.Fatalf("%d events, want 2", len(sink.events))
	}
	digest, _ := r.Digest()
	for i, want := range []struct{ typ, code string }{{audit.ReceiptAccepted, "ok"}, {audit.ReceiptRejected, "replay_detected"}} {
		ev := sink.events[i]
		if ev.EventType != want.typ || ev.Payload["reason"] != want.code || ev.ProducerID != "node-1" || ev.CorrelationID != r.PacketID ||
			ev.Payload["receipt_digest"] != hex.EncodeToString(digest[:]) || ev.Payload["executor"] != f.bob.id || !ev.Timestamp.Equal(f.now) {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	if sink.events[0].IdempotencyKey == sink.events[1].IdempotencyKey {
		t.Error("two outcomes share an idempotency key")
	}
	if _, err := receipt.NewVerifier(f.reg, receipt.WithAudit(nil, "")); err == nil {
		t.Error("nil sink accepted")
	}
}

func TestVerifierOptions(t *testing.T) {
	f := newFixture(t)
	for name, o := range map[string]receipt.Option{
		"negative skew": receipt.WithSkew(-1), "huge skew": receipt.WithSkew(packet.MaxSkew + 1),
		"negative grace": receipt.WithGrace(-1), "huge grace": receipt.WithGrace(packet.MaxGrace + 1),
		"zero max age": receipt.WithMaxAge(0), "huge max age": receipt.WithMaxAge(receipt.MaxMaxAge + 1),
		"nil clock": receipt.WithClock(nil),
	} {
		if _, err := receipt.NewVerifier(f.reg, o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := receipt.NewVerifier(nil); err == nil {
		t.Error("nil registry accepted")
	}
}

// TestDryRunAudit: a dry run records no nonce but still emits its event, marked dry_run,
// under an idempotency key of its own (a later real verification is not deduplicated away).
func TestDryRunAudit(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	r := f.sign(t, f.bob, env, params())
	sink := &memSink{}
	v := f.verifier(t, receipt.WithAudit(sink, "node-1"))
	ctx := context.Background()
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{DryRun: true}), reason.OK, nil)
	expect(t, v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.OK, nil) // the nonce was not consumed
	if len(sink.events) != 2 {
		t.Fatalf("%d events, want 2", len(sink.events))
	}
	if sink.events[0].Payload["dry_run"] != true {
		t.Errorf("dry run event not marked: %+v", sink.events[0].Payload)
	}
	if _, marked := sink.events[1].Payload["dry_run"]; marked {
		t.Errorf("real verification marked dry_run: %+v", sink.events[1].Payload)
	}
	if sink.events[0].IdempotencyKey == sink.events[1].IdempotencyKey {
		t.Error("the dry run and the verification share an idempotency key")
	}
}
