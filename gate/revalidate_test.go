package gate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// running is a handoff whose fn blocks until its context is cancelled (or it is told to
// return), recording when and why it was cancelled.
type running struct {
	started   chan struct{}
	release   chan struct{}
	done      chan result
	mu        sync.Mutex
	cancelled time.Time // fake time at which fn saw ctx.Done
	cause     error     // gate.Cause(ctx) at that moment
}

func start(t *testing.T, g *gate.Gate, ctx context.Context, env []byte) *running {
	t.Helper()
	r := &running{started: make(chan struct{}), release: make(chan struct{}), done: make(chan result, 1)}
	go func() {
		d, err := g.Execute(ctx, env, func(ctx context.Context, _ *verify.Decision) error {
			close(r.started)
			select {
			case <-ctx.Done():
				r.mu.Lock()
				r.cancelled, r.cause = time.Now(), gate.Cause(ctx)
				r.mu.Unlock()
				return context.Cause(ctx)
			case <-r.release:
				return nil
			}
		})
		r.done <- result{d, err}
	}()
	return r
}

func (r *running) state() (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancelled, r.cause
}

// TestExpiryCancelsAtOnce runs handoffs whose fn blocks on ctx.Done and advances fake time
// to the first instant at which the handoff is no longer valid: the context must be
// cancelled exactly then (zero latency in fake time), with the right cause, and not a
// nanosecond before.
func TestExpiryCancelsAtOnce(t *testing.T) {
	cases := []struct {
		name     string
		build    func(t *testing.T, f *fixture) []byte
		vopts    []verify.Option
		gopts    []gate.Option
		deadline time.Duration // from t0
		want     reason.Code
	}{
		{"packet expires_at", func(t *testing.T, f *fixture) []byte {
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil)
		}, nil, nil, 900 * time.Second, reason.Expired},
		{"packet expires_at plus the verifier's grace", func(t *testing.T, f *fixture) []byte {
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil)
		}, []verify.Option{verify.WithTimePolicy(packet.TimePolicy{Grace: 20 * time.Second})}, nil,
			920 * time.Second, reason.Expired},
		{"leaf capability expires first", func(t *testing.T, f *fixture) []byte {
			_, _, env := f.chained(t, time.Hour, 5*time.Minute)
			return env
		}, nil, nil, 5 * time.Minute, reason.CapabilityExpired},
		{"root capability (the whole chain) expires first", func(t *testing.T, f *fixture) []byte {
			_, _, env := f.chained(t, 7*time.Minute, 7*time.Minute)
			return env
		}, nil, nil, 7 * time.Minute, reason.CapabilityExpired},
		{"a lone root capability expires first", func(t *testing.T, f *fixture) []byte {
			root, err := capability.Issue(f.alice.s, f.bob.id, capability.Permissions{AllowedActions: []string{"read_tickets"}}, nil, t0, t0.Add(2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			p := draft(f.alice, f.bob)
			tok := root.Token()
			p.CapabilityToken = &tok
			return seal(t, p, f.alice.s, nil)
		}, nil, nil, 2 * time.Minute, reason.CapabilityExpired},
		{"capability outlives the packet", func(t *testing.T, f *fixture) []byte {
			_, _, env := f.chained(t, 2*time.Hour, time.Hour)
			return env
		}, nil, nil, 900 * time.Second, reason.Expired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				env := c.build(t, f)
				time.Sleep(30 * time.Second) // the handoff arrives 30 s after it was issued
				g := mustGate(t, f.verifier(t, c.vopts...), f.revoked, c.gopts...)
				r := start(t, g, t.Context(), env)
				<-r.started
				deadline := time.Now().Add(t0.Add(c.deadline).Sub(f.clock())) // the deadline in fake time

				time.Sleep(time.Until(deadline) - time.Nanosecond)
				synctest.Wait()
				if at, _ := r.state(); !at.IsZero() {
					t.Fatalf("cancelled at %v, before the deadline %v", at, deadline)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				at, cause := r.state()
				if at.IsZero() {
					t.Fatal("not cancelled at the deadline")
				}
				if latency := at.Sub(deadline); latency != 0 {
					t.Fatalf("cancellation latency %v in fake time, want 0", latency)
				}
				if codeOf(cause) != c.want {
					t.Fatalf("cause %v, want %s", cause, c.want)
				}
				res := <-r.done
				if !res.d.Accepted() || !errors.Is(res.err, gate.ErrInvalidated) || codeOf(res.err) != c.want {
					t.Fatalf("Execute = %s, %v; want ACCEPT and ErrInvalidated with %s", res.d.Reason, res.err, c.want)
				}
			})
		})
	}
}

// TestRevocationCancelsAtOnce revokes, through the memory store's push stream, what a
// running handoff depends on: the bob→carol handoff under the chain alice→bob→carol.
func TestRevocationCancelsAtOnce(t *testing.T) {
	cases := []struct {
		name string
		kind revocation.Kind
		id   func(f *fixture, root, leaf *capability.Capability) string
		want reason.Code // "" when the handoff must run on
	}{
		{"root capability", revocation.KindCapability, func(f *fixture, root, leaf *capability.Capability) string { return root.CapabilityID }, reason.CapabilityRevoked},
		{"leaf capability", revocation.KindCapability, func(f *fixture, root, leaf *capability.Capability) string { return leaf.CapabilityID }, reason.CapabilityRevoked},
		{"sender agent", revocation.KindAgent, func(f *fixture, root, leaf *capability.Capability) string { return f.bob.id }, reason.AgentRevoked},
		{"issuer of the root", revocation.KindAgent, func(f *fixture, root, leaf *capability.Capability) string { return f.alice.id }, reason.CapabilityRevoked},
		{"an unrelated agent", revocation.KindAgent, func(f *fixture, root, leaf *capability.Capability) string { return f.olga.id }, ""},
		{"an unrelated capability", revocation.KindCapability, func(f *fixture, root, leaf *capability.Capability) string { return "cap-unrelated" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				root, leaf, env := f.chained(t, time.Hour, time.Hour)
				r := start(t, f.gate(t), t.Context(), env)
				<-r.started
				time.Sleep(time.Minute)
				revokedAt := time.Now()
				revoke(t, f.revoked, c.kind, c.id(f, root, leaf))
				synctest.Wait()
				at, cause := r.state()
				if c.want == "" {
					if !at.IsZero() {
						t.Fatalf("cancelled (%v) by an unrelated revocation", cause)
					}
					close(r.release)
					if res := <-r.done; res.err != nil || !res.d.Accepted() {
						t.Fatalf("Execute = %s, %v", res.d.Reason, res.err)
					}
					return
				}
				if at.IsZero() {
					t.Fatal("not cancelled by the revocation")
				}
				if latency := at.Sub(revokedAt); latency != 0 {
					t.Fatalf("latency %v in fake time, want 0", latency)
				}
				if codeOf(cause) != c.want {
					t.Fatalf("cause %v, want %s", cause, c.want)
				}
				if res := <-r.done; !errors.Is(res.err, gate.ErrInvalidated) || codeOf(res.err) != c.want {
					t.Fatalf("Execute error %v, want ErrInvalidated with %s", res.err, c.want)
				}
			})
		})
	}
}

// A revocation that the verifier did not see (here: a verifier without the store) is
// caught by the gate's re-check after the watch starts, and fn never runs.
func TestRecheckAfterWatch(t *testing.T) {
	for _, kind := range []revocation.Kind{revocation.KindCapability, revocation.KindAgent} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t)
			root, _, env := f.chained(t, time.Hour, time.Hour)
			v, err := verify.New(f.reg, f.replay, verify.WithClock(f.clock)) // no revocation store
			if err != nil {
				t.Fatal(err)
			}
			id, want := root.CapabilityID, reason.CapabilityRevoked
			if kind == revocation.KindAgent {
				id, want = f.bob.id, reason.AgentRevoked
			}
			revoke(t, f.revoked, kind, id)
			ran := false
			d, err := mustGate(t, v, f.revoked).Execute(t.Context(), env, func(context.Context, *verify.Decision) error { ran = true; return nil })
			if ran || !d.Accepted() || !errors.Is(err, gate.ErrInvalidated) || codeOf(err) != want {
				t.Fatalf("ran=%v decision=%s err=%v; want fn not run, ErrInvalidated with %s", ran, d.Reason, err, want)
			}
		})
	}
}

// lossy is a revocation store whose push stream the test controls: it can refuse to
// watch, or close the stream under a live context (a lost subscription).
type lossy struct {
	*revocation.Memory
	mu     sync.Mutex
	refuse bool
	stops  []chan struct{}
}

func (l *lossy) Watch(ctx context.Context) (<-chan revocation.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse {
		return nil, revocation.ErrUnavailable
	}
	in, err := l.Memory.Watch(ctx)
	if err != nil {
		return nil, err
	}
	out, stop := make(chan revocation.Entry), make(chan struct{})
	l.stops = append(l.stops, stop)
	go func() {
		defer close(out)
		for {
			select {
			case e, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-stop:
					return
				}
			case <-stop:
				return
			}
		}
	}()
	return out, nil
}

// lose closes every open stream, as a store does when its subscription is lost.
func (l *lossy) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.stops {
		close(s)
	}
	l.stops = nil
}

func TestLostStreamFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		l := &lossy{Memory: f.revoked}
		_, _, env := f.chained(t, time.Hour, time.Hour)
		r := start(t, mustGate(t, f.verifier(t), l), t.Context(), env)
		<-r.started
		time.Sleep(time.Minute)
		lostAt := time.Now()
		l.lose()
		synctest.Wait()
		at, cause := r.state()
		if at.IsZero() || codeOf(cause) != reason.StoreUnavailable {
			t.Fatalf("after the stream was lost: cancelled at %v with %v; want store_unavailable", at, cause)
		}
		if at != lostAt {
			t.Fatalf("latency %v in fake time, want 0", at.Sub(lostAt))
		}
		<-r.done
	})
}

// A stream lost while the handoff waits for approval is replaced before fn runs.
func TestStreamLostWhileWaitingIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		l := &lossy{Memory: f.revoked}
		g := mustGate(t, f.verifier(t), l)
		p, env := f.reviewed(t)
		r := start(t, g, t.Context(), env)
		synctest.Wait()
		l.lose()
		synctest.Wait()
		if err := g.Submit(t.Context(), f.approve(t, f.olga, p, "approve")); err != nil {
			t.Fatal(err)
		}
		<-r.started
		synctest.Wait()
		if at, cause := r.state(); !at.IsZero() {
			t.Fatalf("cancelled (%v) although the stream was replaced", cause)
		}
		revoke(t, l, revocation.KindAgent, f.alice.id) // the sender: heard on the new stream
		synctest.Wait()
		if at, cause := r.state(); at.IsZero() || codeOf(cause) != reason.AgentRevoked {
			t.Fatalf("after revoking the sender: cancelled at %v with %v", at, cause)
		}
		<-r.done
	})
}

// A store that cannot watch rejects before verifying, so the nonce stays unused.
func TestWatchRefusedRejectsBeforeVerifying(t *testing.T) {
	f := newFixture(t)
	l := &lossy{Memory: f.revoked, refuse: true}
	env := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	ran := false
	fn := func(context.Context, *verify.Decision) error { ran = true; return nil }
	d, err := mustGate(t, f.verifier(t), l).Execute(t.Context(), env, fn)
	if ran || d.Reason != reason.StoreUnavailable || !errors.Is(err, gate.ErrRejected) || !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("ran=%v decision=%s err=%v", ran, d.Reason, err)
	}
	if d, err := f.gate(t).Execute(t.Context(), env, fn); err != nil || !ran || !d.Accepted() {
		t.Fatalf("retry with a working store: %s %v (ran=%v)", d.Reason, err, ran)
	}
}

// Other rejections return at once; the caller's own cancellation is not the gate's.
func TestRejectionsAndCallerCancellation(t *testing.T) {
	f := newFixture(t)
	g := f.gate(t)
	ran := false
	fn := func(context.Context, *verify.Decision) error { ran = true; return nil }
	d, err := g.Execute(t.Context(), []byte("{"), fn)
	if ran || d.Reason != reason.MalformedEnvelope || !errors.Is(err, gate.ErrRejected) || codeOf(err) != reason.MalformedEnvelope {
		t.Fatalf("malformed: ran=%v %s %v", ran, d.Reason, err)
	}
	env := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	if _, err := g.Execute(t.Context(), env, fn); err != nil {
		t.Fatal(err)
	}
	ran = false
	if d, err := g.Execute(t.Context(), env, fn); ran || d.Reason != reason.ReplayDetected || !errors.Is(err, gate.ErrRejected) {
		t.Fatalf("replay: ran=%v %s %v", ran, d.Reason, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	env = seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	boom := errors.New("boom")
	_, err = g.Execute(ctx, env, func(ctx context.Context, _ *verify.Decision) error {
		cancel()
		<-ctx.Done()
		if gate.Cause(ctx) != nil {
			t.Errorf("Cause = %v after the caller cancelled", gate.Cause(ctx))
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Execute = %v, want fn's own error", err)
	}
}

func TestRevalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		g := f.gate(t)
		root, _, env := f.chained(t, time.Hour, 10*time.Minute)
		d, err := g.Execute(t.Context(), env, func(context.Context, *verify.Decision) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Revalidate(t.Context(), d); err != nil {
			t.Fatalf("fresh handoff: %v", err)
		}
		time.Sleep(10 * time.Minute)
		if err := g.Revalidate(t.Context(), d); codeOf(err) != reason.CapabilityExpired {
			t.Fatalf("after the leaf expired: %v", err)
		}

		g2 := mustGate(t, f.verifier(t, verify.WithClock(func() time.Time { return t0 })), f.revoked)
		if err := g2.Revalidate(t.Context(), d); err != nil {
			t.Fatalf("as of t0: %v", err)
		}
		revoke(t, f.revoked, revocation.KindCapability, root.CapabilityID)
		if err := g2.Revalidate(t.Context(), d); codeOf(err) != reason.CapabilityRevoked {
			t.Fatalf("after revoking the root: %v", err)
		}
		g3 := mustGate(t, f.verifier(t, verify.WithClock(func() time.Time { return t0 })), &broken{f.revoked})
		if err := g3.Revalidate(t.Context(), d); codeOf(err) != reason.StoreUnavailable {
			t.Fatalf("store down: %v", err)
		}
		rej := f.verifier(t).Verify(t.Context(), []byte("{"))
		if err := g.Revalidate(t.Context(), rej); !errors.Is(err, gate.ErrRejected) {
			t.Fatalf("rejected decision: %v", err)
		}
		if err := g.Revalidate(t.Context(), nil); !errors.Is(err, gate.ErrRejected) {
			t.Fatalf("nil decision: %v", err)
		}
	})
}

type broken struct{ *revocation.Memory }

func (broken) Revoked(context.Context, revocation.Kind, string) (revocation.Entry, bool, error) {
	return revocation.Entry{}, false, revocation.ErrUnavailable
}

// counting is a revocation store that counts Watch calls.
type counting struct {
	*revocation.Memory
	mu      sync.Mutex
	watches int
}

func (c *counting) Watch(ctx context.Context) (<-chan revocation.Entry, error) {
	c.mu.Lock()
	c.watches++
	c.mu.Unlock()
	return c.Memory.Watch(ctx)
}

// Concurrent handoffs share one subscription, and a revocation cancels only the handoffs
// that depend on what was revoked.
func TestHandoffsShareOneSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		store := &counting{Memory: f.revoked}
		g := mustGate(t, f.verifier(t), store)
		root1, _, env1 := f.chained(t, time.Hour, time.Hour)
		_, _, env2 := f.chained(t, time.Hour, time.Hour)
		env3 := seal(t, draft(f.alice, f.carol), f.alice.s, nil)
		r1, r2, r3 := start(t, g, t.Context(), env1), start(t, g, t.Context(), env2), start(t, g, t.Context(), env3)
		<-r1.started
		<-r2.started
		<-r3.started
		revoke(t, f.revoked, revocation.KindCapability, root1.CapabilityID)
		synctest.Wait()
		if at, cause := r1.state(); at.IsZero() || codeOf(cause) != reason.CapabilityRevoked {
			t.Fatalf("handoff 1: cancelled at %v with %v", at, cause)
		}
		for i, r := range []*running{r2, r3} {
			if at, cause := r.state(); !at.IsZero() {
				t.Fatalf("handoff %d cancelled (%v) by another handoff's revocation", i+2, cause)
			}
		}
		revoke(t, f.revoked, revocation.KindAgent, f.alice.id) // issuer of chain 2's root, sender of 3
		synctest.Wait()
		if _, cause := r2.state(); codeOf(cause) != reason.CapabilityRevoked {
			t.Fatalf("handoff 2: %v", cause)
		}
		if _, cause := r3.state(); codeOf(cause) != reason.AgentRevoked {
			t.Fatalf("handoff 3: %v", cause)
		}
		for _, r := range []*running{r1, r2, r3} {
			<-r.done
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if store.watches != 1 {
			t.Fatalf("%d subscriptions for concurrent handoffs, want 1", store.watches)
		}
	})
}

// flaky is a revocation store whose Revoked can be made to fail while its Watch stream
// stays open, as store/redis behaves while its own subscription is down.
type flaky struct {
	*revocation.Memory
	mu   sync.Mutex
	down bool
}

func (s *flaky) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *flaky) Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return revocation.Entry{}, false, revocation.ErrUnavailable
	}
	return s.Memory.Revoked(ctx, kind, id)
}

func TestLivenessProbe(t *testing.T) {
	for _, interval := range []time.Duration{gate.DefaultLivenessProbe, 2 * time.Second, 0} {
		t.Run(interval.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				store := &flaky{Memory: f.revoked}
				var opts []gate.Option
				if interval != gate.DefaultLivenessProbe {
					opts = append(opts, gate.WithLivenessProbe(interval))
				}
				_, _, env := f.chained(t, time.Hour, time.Hour)
				r := start(t, mustGate(t, f.verifier(t), store, opts...), t.Context(), env)
				<-r.started
				time.Sleep(10 * time.Second) // healthy: the probe does not cancel
				synctest.Wait()
				if at, cause := r.state(); !at.IsZero() {
					t.Fatalf("cancelled (%v) while the store was healthy", cause)
				}
				downAt := time.Now()
				store.setDown(true)
				if interval == 0 {
					time.Sleep(time.Minute)
					synctest.Wait()
					if at, _ := r.state(); !at.IsZero() {
						t.Fatal("cancelled with the probe off")
					}
					close(r.release)
					<-r.done
					return
				}
				time.Sleep(interval)
				synctest.Wait()
				at, cause := r.state()
				if at.IsZero() || codeOf(cause) != reason.StoreUnavailable {
					t.Fatalf("store down for one probe interval: cancelled at %v with %v", at, cause)
				}
				if lat := at.Sub(downAt); lat > interval {
					t.Fatalf("detected after %v, more than one interval %v", lat, interval)
				}
				<-r.done
			})
		})
	}
}
