package gate_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// step is one thing a reviewer does while the handoff waits.
type step struct {
	who      func(f *fixture) agent
	decision string
	wantErr  reason.Code // what Submit returns ("" for nil)
}

func TestBlockingApproval(t *testing.T) {
	olga := func(f *fixture) agent { return f.olga }
	oscar := func(f *fixture) agent { return f.oscar }
	bob := func(f *fixture) agent { return f.bob }
	cases := []struct {
		name      string
		threshold int
		timeout   time.Duration // context deadline (0: none)
		steps     []step
		want      reason.Code
		wantCtx   error // the context error Execute must wrap
	}{
		{name: "an approval releases the handoff", steps: []step{{olga, approval.Approve, ""}}, want: reason.OK},
		{name: "a deny rejects it", steps: []step{{olga, approval.Deny, ""}}, want: reason.PolicyDenied},
		{name: "an approval by a non-approver is discarded, the handoff keeps waiting",
			steps: []step{{bob, approval.Approve, reason.ApprovalInvalid}, {olga, approval.Approve, ""}}, want: reason.OK},
		{name: "a deny by a non-approver is discarded",
			steps: []step{{bob, approval.Deny, reason.ApprovalInvalid}, {oscar, approval.Approve, ""}}, want: reason.OK},
		{name: "threshold 2 waits for the second approver", threshold: 2,
			steps: []step{{olga, approval.Approve, ""}, {olga, approval.Approve, ""}, {oscar, approval.Approve, ""}}, want: reason.OK},
		{name: "a deny after an approval vetoes", threshold: 2,
			steps: []step{{olga, approval.Approve, ""}, {oscar, approval.Deny, ""}}, want: reason.PolicyDenied},
		{name: "the context deadline passes", timeout: 10 * time.Second,
			want: reason.HumanReviewRequired, wantCtx: context.DeadlineExceeded},
		{name: "the packet expires while it waits", want: reason.Expired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				var vopts []verify.Option
				if c.threshold > 0 {
					vopts = append(vopts, verify.WithApprovalThreshold(c.threshold))
				}
				g := mustGate(t, f.verifier(t, vopts...), f.revoked)
				p, env := f.reviewed(t)
				ctx := t.Context()
				if c.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, c.timeout)
					defer cancel()
				}
				ran := false
				done := make(chan result, 1)
				start := time.Now()
				go func() {
					d, err := g.Execute(ctx, env, func(context.Context, *verify.Decision) error { ran = true; return nil })
					done <- result{d, err}
				}()
				synctest.Wait() // Execute is now blocked waiting for approvals

				pend := g.Pending()
				if len(pend) != 1 {
					t.Fatalf("Pending lists %d handoffs, want 1", len(pend))
				}
				digest, _ := approval.Digest(p, packet.Rule04)
				want := gate.PendingHandoff{PacketID: p.PacketID, PacketDigest: hex.EncodeToString(digest[:]),
					FromAgent: f.alice.id, ToAgent: f.bob.id, Intent: p.Intent, Since: t0, ExpiresAt: t0.Add(900 * time.Second)}
				if ph := pend[0]; ph.PacketID != want.PacketID || ph.PacketDigest != want.PacketDigest || ph.FromAgent != want.FromAgent ||
					ph.ToAgent != want.ToAgent || ph.Intent != want.Intent || !ph.Since.Equal(want.Since) || !ph.ExpiresAt.Equal(want.ExpiresAt) ||
					len(ph.Actions) != 1 || ph.Actions[0] != "read_tickets" || ph.Approvals != 0 {
					t.Fatalf("Pending()[0] = %+v, want %+v", ph, want)
				}

				for i, s := range c.steps {
					select {
					case r := <-done:
						t.Fatalf("Execute returned (%s) before step %d", r.d.Reason, i)
					default:
					}
					err := g.Submit(t.Context(), f.approve(t, s.who(f), p, s.decision))
					if codeOf(err) != s.wantErr || (s.wantErr == "" && err != nil) {
						t.Fatalf("step %d: Submit = %v, want code %q", i, err, s.wantErr)
					}
				}
				r := <-done
				if r.d.Reason != c.want {
					t.Fatalf("decision %s %s (%s), want %s", r.d.Decision, r.d.Reason, r.d.Detail, c.want)
				}
				if ran != (c.want == reason.OK) {
					t.Fatalf("fn ran = %v, want %v", ran, c.want == reason.OK)
				}
				if c.want == reason.OK {
					if r.err != nil {
						t.Fatalf("accepted, but Execute returned %v", r.err)
					}
				} else if !errors.Is(r.err, gate.ErrRejected) {
					t.Fatalf("rejected, but Execute's error %v does not wrap ErrRejected", r.err)
				}
				if c.wantCtx != nil && !errors.Is(r.err, c.wantCtx) {
					t.Fatalf("error %v does not wrap %v", r.err, c.wantCtx)
				}
				switch c.want {
				case reason.HumanReviewRequired:
					if waited := time.Since(start); waited != c.timeout {
						t.Fatalf("waited %v, want the context timeout %v", waited, c.timeout)
					}
				case reason.Expired:
					if waited := time.Since(start); waited != 900*time.Second {
						t.Fatalf("waited %v, want until the packet's expiry (900s)", waited)
					}
				}
				if n := len(g.Pending()); n != 0 {
					t.Fatalf("Pending lists %d handoffs after Execute returned", n)
				}
				// Whatever happened, the nonce was consumed only by an acceptance; a deny sticks.
				if c.want != reason.OK && c.want != reason.Expired {
					want := reason.HumanReviewRequired
					if c.want == reason.PolicyDenied {
						want = reason.PolicyDenied
					}
					if d := f.verifier(t).Verify(t.Context(), env); d.Reason != want {
						t.Fatalf("re-verification after a rejection: %s, want %s (nonce unused)", d.Reason, want)
					}
				}
			})
		})
	}
}

func TestPendingCountsApprovals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		g := mustGate(t, f.verifier(t, verify.WithApprovalThreshold(2)), f.revoked)
		p, env := f.reviewed(t)
		done := make(chan result, 1)
		go func() {
			d, err := g.Execute(t.Context(), env, func(context.Context, *verify.Decision) error { return nil })
			done <- result{d, err}
		}()
		synctest.Wait()
		if err := g.Submit(t.Context(), f.approve(t, f.olga, p, approval.Approve)); err != nil {
			t.Fatal(err)
		}
		if pend := g.Pending(); len(pend) != 1 || pend[0].Approvals != 1 {
			t.Fatalf("Pending = %+v, want one handoff with 1 approval", pend)
		}
		if err := g.Submit(t.Context(), f.approve(t, f.oscar, p, approval.Approve)); err != nil {
			t.Fatal(err)
		}
		if r := <-done; !r.d.Accepted() || r.err != nil {
			t.Fatalf("%s %v", r.d.Reason, r.err)
		}
	})
}

// An approval that expires while the handoff waits for a second approver is dropped, and
// the handoff keeps waiting; the submitter of the new approval is not blamed.
func TestExpiredApprovalIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		g := mustGate(t, f.verifier(t, verify.WithApprovalThreshold(2)), f.revoked)
		p, env := f.reviewed(t)
		done := make(chan result, 1)
		go func() {
			d, err := g.Execute(t.Context(), env, func(context.Context, *verify.Decision) error { return nil })
			done <- result{d, err}
		}()
		synctest.Wait()
		d, _ := approval.Digest(p, packet.Rule04)
		short, err := approval.New(f.olga.s, d, approval.Approve, f.clock(), time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Submit(t.Context(), short); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // olga's approval expires
		if err := g.Submit(t.Context(), f.approve(t, f.oscar, p, approval.Approve)); err != nil {
			t.Fatalf("oscar's valid approval: %v", err)
		}
		if pend := g.Pending(); len(pend) != 1 || pend[0].Approvals != 1 {
			t.Fatalf("Pending = %+v, want one handoff with 1 (oscar's) approval", pend)
		}
		if err := g.Submit(t.Context(), f.approve(t, f.olga, p, approval.Approve)); err != nil {
			t.Fatal(err)
		}
		if r := <-done; !r.d.Accepted() {
			t.Fatalf("%s %v", r.d.Reason, r.err)
		}
	})
}

func TestSubmitWithoutWaiter(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t)
	p, _ := f.reviewed(t)
	if err := g.Submit(t.Context(), f.approve(t, f.olga, p, approval.Approve)); !errors.Is(err, gate.ErrNotPending) {
		t.Fatalf("Submit with nothing waiting = %v, want ErrNotPending", err)
	}
	bad := f.approve(t, f.olga, p, approval.Approve)
	bad.PacketDigest = "not hex"
	if err := g.Submit(t.Context(), bad); codeOf(err) != reason.MalformedEnvelope {
		t.Fatalf("Submit of a malformed approval = %v, want malformed_envelope", err)
	}
	if err := g.Submit(t.Context(), nil); err == nil {
		t.Fatal("Submit(nil) succeeded")
	}
}

// A handoff that already carries its approval is accepted without waiting.
func TestEnvelopeWithApprovalDoesNotWait(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t)
	p, _ := f.reviewed(t)
	env := &packet.Envelope{Packet: p, Approvals: nil}
	env.Approvals = append(env.Approvals, f.approve(t, f.olga, p, approval.Approve).Value())
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	d, err := g.Execute(t.Context(), b, func(context.Context, *verify.Decision) error { return nil })
	if err != nil || !d.Accepted() {
		t.Fatalf("%s %v", d.Reason, err)
	}
}

func TestApprovalWaitBound(t *testing.T) {
	for _, wait := range []time.Duration{0, 5 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t)
			g := f.gate(t, gate.WithApprovalWait(wait))
			_, env := f.reviewed(t)
			start := time.Now()
			d, err := g.Execute(context.Background(), env, func(context.Context, *verify.Decision) error {
				t.Error("fn ran without approval")
				return nil
			})
			if d.Reason != reason.HumanReviewRequired || !errors.Is(err, gate.ErrRejected) {
				t.Fatalf("wait %v: %s, %v", wait, d.Reason, err)
			}
			if waited := time.Since(start); waited != wait {
				t.Fatalf("waited %v, want %v", waited, wait)
			}
		})
	}
}

// A 0.3.3 packet (the reference's older signing rule) waits and is released like a 0.4
// one: approvals name its 0.3.3 digest, and re-verification keeps its signed form.
func TestApprovalOfRule033Packet(t *testing.T) {
	for _, decision := range []string{approval.Approve, approval.Deny} {
		t.Run(decision, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				g := f.gate(t)
				p := draft(f.alice, f.bob)
				p.Constraints = &packet.Constraints{RequiresHumanReview: true}
				if err := p.Sign(f.alice.s, packet.Rule033); err != nil {
					t.Fatal(err)
				}
				env, err := (&packet.Envelope{Packet: p}).MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan result, 1)
				go func() {
					d, err := g.Execute(t.Context(), env, func(context.Context, *verify.Decision) error { return nil })
					done <- result{d, err}
				}()
				synctest.Wait()
				// An approval of the 0.4 digest names another byte string: it does not count.
				if err := g.Submit(t.Context(), f.approve(t, f.olga, p, decision)); !errors.Is(err, gate.ErrNotPending) {
					t.Fatalf("approval of the wrong digest: %v, want ErrNotPending", err)
				}
				dg, err := approval.Digest(p, packet.Rule033)
				if err != nil {
					t.Fatal(err)
				}
				a, err := approval.New(f.olga.s, dg, decision, f.clock(), time.Hour, "")
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Submit(t.Context(), a); err != nil {
					t.Fatal(err)
				}
				r := <-done
				want := reason.OK
				if decision == approval.Deny {
					want = reason.PolicyDenied
				}
				if r.d.Reason != want || r.d.Rule != packet.Rule033 {
					t.Fatalf("%s (rule %s) %v, want %s", r.d.Reason, r.d.Rule, r.err, want)
				}
			})
		})
	}
}
