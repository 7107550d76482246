package gate_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// setClock is a protocol clock a test moves by hand.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *setClock) set(at time.Time) { c.mu.Lock(); c.t = at; c.mu.Unlock() }

// TestGateReadsTheVerifiersClockAndGrace: the gate has no clock or grace of its own. Its
// judgement of an accepted handoff follows the verifier's clock wherever it is set, and a
// packet stays valid exactly the verifier's grace past its expires_at.
func TestGateReadsTheVerifiersClockAndGrace(t *testing.T) {
	cases := []struct {
		name  string
		grace time.Duration
		at    time.Duration // verifier's clock, from t0, when Revalidate is asked
		want  reason.Code   // "" for still valid
	}{
		{"just issued", 0, 30 * time.Second, ""},
		{"a nanosecond before expires_at", 0, 900*time.Second - time.Nanosecond, ""},
		{"at expires_at without grace", 0, 900 * time.Second, reason.Expired},
		{"inside the verifier's grace", 20 * time.Second, 919 * time.Second, ""},
		{"at the end of the verifier's grace", 20 * time.Second, 920 * time.Second, reason.Expired},
		{"long after", 20 * time.Second, 24 * time.Hour, reason.Expired},
		{"the verifier's clock set back before issued_at", 0, -time.Hour, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			clock := &setClock{t: t0.Add(30 * time.Second)}
			v := f.verifier(t, verify.WithClock(clock.now), verify.WithGrace(c.grace))
			g := mustGate(t, v, f.revoked)
			d, err := g.Execute(t.Context(), seal(t, draft(f.alice, f.bob), f.alice.s, nil), func(context.Context, *verify.Decision) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			clock.set(t0.Add(c.at))
			if err := g.Revalidate(t.Context(), d); codeOf(err) != c.want {
				t.Fatalf("Revalidate as of t0%+v = %v, want %q", c.at, err, c.want)
			}
		})
	}
}

// TestWaitingFollowsTheVerifiersClock: a handoff waiting for approval is listed as of the
// verifier's clock, with the deadline the verifier's grace gives it, and is re-verified
// as of that clock: an approval issued in the verifier's future does not count yet.
func TestWaitingFollowsTheVerifiersClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		clock := &setClock{t: t0.Add(time.Minute)}
		v := f.verifier(t, verify.WithClock(clock.now), verify.WithGrace(15*time.Second))
		g := mustGate(t, v, f.revoked)
		p, env := f.reviewed(t)
		done := make(chan result, 1)
		go func() {
			d, err := g.Execute(t.Context(), env, func(context.Context, *verify.Decision) error { return nil })
			done <- result{d, err}
		}()
		synctest.Wait()
		pend := g.Pending()
		if len(pend) != 1 {
			t.Fatalf("pending %v", pend)
		}
		if !pend[0].Since.Equal(t0.Add(time.Minute)) || !pend[0].ExpiresAt.Equal(t0.Add(915*time.Second)) {
			t.Fatalf("waiting since %v until %v; want the verifier's clock %v and expires_at plus its grace",
				pend[0].Since, pend[0].ExpiresAt, t0.Add(time.Minute))
		}
		// Issued ten minutes ahead of the verifier's clock: beyond any skew, so invalid now.
		d, err := approval.Digest(p, packet.Rule04)
		if err != nil {
			t.Fatal(err)
		}
		early, err := approval.New(f.olga.s, d, approval.Approve, t0.Add(11*time.Minute), time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Submit(t.Context(), early); codeOf(err) != reason.ApprovalInvalid {
			t.Fatalf("an approval from the verifier's future: %v, want approval_invalid", err)
		}
		clock.set(t0.Add(11 * time.Minute)) // now it is valid
		if err := g.Submit(t.Context(), early); err != nil {
			t.Fatalf("the same approval once the verifier's clock reached it: %v", err)
		}
		r := <-done
		if r.err != nil || !r.d.Accepted() {
			t.Fatalf("%v %v", r.d.Reason, r.err)
		}
	})
}

func TestNewRefusesBadArguments(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	var nilMem *revocation.Memory
	for name, build := range map[string]func() (*gate.Gate, error){
		"nil verifier":            func() (*gate.Gate, error) { return gate.New(nil, f.revoked) },
		"nil revocation store":    func() (*gate.Gate, error) { return gate.New(v, nil) },
		"typed nil store":         func() (*gate.Gate, error) { return gate.New(v, nilMem) },
		"nil option":              func() (*gate.Gate, error) { return gate.New(v, f.revoked, nil) },
		"negative approval wait":  func() (*gate.Gate, error) { return gate.New(v, f.revoked, gate.WithApprovalWait(-time.Second)) },
		"negative liveness probe": func() (*gate.Gate, error) { return gate.New(v, f.revoked, gate.WithLivenessProbe(-time.Second)) },
	} {
		if g, err := build(); err == nil || g != nil {
			t.Errorf("%s: New returned (%v, %v), want an error", name, g, err)
		}
	}
	if _, err := mustGate(t, v, f.revoked).Execute(t.Context(), nil, nil); err == nil {
		t.Error("Execute with a nil fn did not fail")
	}
}
