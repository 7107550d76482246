package gate_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	redisstore "github.com/trusthandoff/trusthandoff-go/store/redis"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

var redisPrefixSeq atomic.Int64

// openRedis opens a store/redis Store on srv under prefix and waits until it is ready.
func openRedis(t *testing.T, srv *redistest.Server, prefix string, now func() time.Time) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(redisstore.Config{Addr: srv.Addr, Prefix: prefix, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// twoNodes is a gate on node A and a second store (node B) sharing one Redis.
func twoNodes(t *testing.T, f *fixture, srv *redistest.Server) (g *gate.Gate, a, b *redisstore.Store) {
	prefix := fmt.Sprintf("gate-test-%d-%d:", time.Now().UnixNano(), redisPrefixSeq.Add(1))
	a, b = openRedis(t, srv, prefix, f.clock), openRedis(t, srv, prefix, f.clock)
	v, err := verify.New(f.reg, a, verify.WithRevocations(a), verify.WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	return mustGate(t, v, a), a, b
}

// awaitCancel waits (wall clock, bounded) until the running handoff was cancelled and
// returns when, and why.
func awaitCancel(t *testing.T, r *running) (time.Time, error) {
	t.Helper()
	select {
	case res := <-r.done:
		if !errors.Is(res.err, gate.ErrInvalidated) {
			t.Fatalf("Execute = %s, %v; want ErrInvalidated", res.d.Reason, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running handoff was not cancelled within 10s")
	}
	return r.state()
}

// TestRedisRevocationCrossNode runs a handoff through a gate on node A and revokes on
// node B: the revocation reaches A by Redis pub/sub and cancels the work.
func TestRedisRevocationCrossNode(t *testing.T) {
	srv := redistest.Start(t)
	cases := []struct {
		name string
		kind revocation.Kind
		id   func(f *fixture, rootID string) string
		want reason.Code
	}{
		{"root capability", revocation.KindCapability, func(f *fixture, rootID string) string { return rootID }, reason.CapabilityRevoked},
		{"sender agent", revocation.KindAgent, func(f *fixture, _ string) string { return f.bob.id }, reason.AgentRevoked},
		{"issuer of the root", revocation.KindAgent, func(f *fixture, _ string) string { return f.alice.id }, reason.CapabilityRevoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			g, _, b := twoNodes(t, f, srv)
			root, _, env := f.chained(t, time.Hour, time.Hour)
			r := start(t, g, t.Context(), env)
			select {
			case <-r.started:
			case res := <-r.done:
				t.Fatalf("Execute returned before fn ran: %s %v", res.d.Reason, res.err)
			}
			revokedAt := time.Now()
			revoke(t, b, c.kind, c.id(f, root.CapabilityID))
			at, cause := awaitCancel(t, r)
			latency := at.Sub(revokedAt)
			t.Logf("revoke on node B → fn's context cancelled on node A: %v (wall clock, loopback Redis)", latency)
			if codeOf(cause) != c.want {
				t.Fatalf("cause %v, want %s", cause, c.want)
			}
			if latency > 2*time.Second {
				t.Fatalf("cancellation took %v", latency)
			}
		})
	}
}

// TestRedisKilledFailsClosed kills redis-server while a handoff runs: node A can no longer
// hear revocations, so the work is cancelled with store_unavailable, and new handoffs are
// rejected.
func TestRedisKilledFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	f := newFixture(t)
	g, _, _ := twoNodes(t, f, srv)
	_, _, env := f.chained(t, time.Hour, time.Hour)
	r := start(t, g, t.Context(), env)
	select {
	case <-r.started:
	case res := <-r.done:
		t.Fatalf("Execute returned before fn ran: %s %v", res.d.Reason, res.err)
	}
	killedAt := time.Now()
	srv.Kill()
	at, cause := awaitCancel(t, r)
	latency := at.Sub(killedAt)
	t.Logf("redis-server killed → fn's context cancelled: %v (wall clock; liveness probe every %v)", latency, gate.DefaultLivenessProbe)
	if codeOf(cause) != reason.StoreUnavailable {
		t.Fatalf("cause %v, want store_unavailable", cause)
	}
	if latency > 2*time.Second {
		t.Fatalf("cancellation took %v", latency)
	}

	ran := false
	_, _, env2 := f.chained(t, time.Hour, time.Hour)
	d, err := g.Execute(t.Context(), env2, func(context.Context, *verify.Decision) error { ran = true; return nil })
	if ran || d.Reason != reason.StoreUnavailable || !errors.Is(err, gate.ErrRejected) {
		t.Fatalf("with Redis down: ran=%v %s %v; want store_unavailable, fn not run", ran, d.Reason, err)
	}
}
