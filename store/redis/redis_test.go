package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

var prefixSeq atomic.Int64

// uniquePrefix gives each case its own keyspace on a shared server.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("test%d-%d:", time.Now().UnixNano(), prefixSeq.Add(1))
}

// openStore opens a Store on srv and waits until it is ready.
func openStore(t testing.TB, srv *redistest.Server, cfg Config) *Store {
	t.Helper()
	cfg.Addr = srv.Addr
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReplaySuite(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunReplay(t, func(t *testing.T) storetest.ReplayEnv {
		return storetest.ReplayEnv{Store: openStore(t, srv, Config{Prefix: uniquePrefix(t)})}
	})
}

func TestRevocationSuite(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunRevocation(t, func(t *testing.T) storetest.RevocationEnv {
		p := uniquePrefix(t)
		// Two Stores on one Redis and prefix: two nodes.
		return storetest.RevocationEnv{
			Store: openStore(t, srv, Config{Prefix: p}),
			Peer:  openStore(t, srv, Config{Prefix: p}),
		}
	})
}

func TestPendingSuite(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunPending(t, func(t *testing.T) storetest.PendingEnv {
		return storetest.PendingEnv{Store: openStore(t, srv, Config{Prefix: uniquePrefix(t)})}
	})
}

func TestOpenNeedsAddr(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Fatal("Open without Addr succeeded")
	}
	if _, err := Open(Config{Addr: "127.0.0.1:1", WaitReplicas: -1}); err == nil {
		t.Fatal("Open with negative WaitReplicas succeeded")
	}
}

// TestUnreachableFailsClosed points a Store at a port nothing listens on.
func TestUnreachableFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	s, err := Open(Config{Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	start := time.Now()
	if _, err := s.Record(ctx, storetest.RandomKey(t), time.Now().Add(time.Minute)); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("Record: %v, want ErrUnavailable", err)
	}
	if _, _, err := s.Revoked(ctx, revocation.KindAgent, "a"); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Revoked: %v, want ErrUnavailable", err)
	}
	if err := s.Revoke(ctx, revocation.Entry{Kind: revocation.KindAgent, ID: "a"}); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Revoke: %v, want ErrUnavailable", err)
	}
	if err := s.Put(ctx, "p", []byte("e"), time.Now().Add(time.Minute)); !errors.Is(err, pending.ErrUnavailable) {
		t.Fatalf("Put: %v, want ErrUnavailable", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, pending.ErrUnavailable) {
		t.Fatalf("List: %v, want ErrUnavailable", err)
	}
	t.Logf("failed closed in %v", time.Since(start))
}

// TestKillAndRestart kills redis-server under two nodes, checks that both
// fail closed, restarts it empty on the same port, and checks that both
// recover, keep (and restore) the revocations they knew, and push again.
func TestKillAndRestart(t *testing.T) {
	srv := redistest.Start(t)
	p := uniquePrefix(t)
	fast := Config{Prefix: p, HealthInterval: 100 * time.Millisecond}
	a, b := openStore(t, srv, fast), openStore(t, srv, fast)
	ctx := t.Context()
	x := revocation.Entry{Kind: revocation.KindCapability, ID: "x", At: time.Unix(1_900_000_000, 0)}
	if err := a.Revoke(ctx, x); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 5*time.Second, "b sees x", func() (bool, error) {
		_, ok, err := b.Revoked(ctx, x.Kind, x.ID)
		return ok, err
	})
	watch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	killed := time.Now()
	if _, err := a.Record(ctx, storetest.RandomKey(t), time.Now().Add(time.Minute)); !errors.Is(err, replay.ErrUnavailable) {
		t.Fatalf("Record with Redis down: %v, want ErrUnavailable", err)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		storetest.Eventually(t, 5*time.Second, name+" Revoked fails closed", func() (bool, error) {
			_, _, err := s.Revoked(ctx, x.Kind, x.ID)
			return errors.Is(err, revocation.ErrUnavailable), nil
		})
	}
	t.Logf("both nodes failing closed %v after the kill", time.Since(killed))
	if err := a.Revoke(ctx, revocation.Entry{Kind: revocation.KindAgent, ID: "during-outage"}); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Revoke with Redis down: %v, want ErrUnavailable", err)
	}

	srv.Restart() // empty: no persistence
	restarted := time.Now()
	for _, s := range []*Store{a, b} {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.Ready(rctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if got, ok, err := s.Revoked(ctx, x.Kind, x.ID); err != nil || !ok || !got.At.Equal(x.At) {
			t.Fatalf("after restart Revoked(x) = %+v, %v, %v; want the revocation kept", got, ok, err)
		}
	}
	t.Logf("both nodes resynced %v after the restart", time.Since(restarted))
	// The nodes wrote x back, so a node that never saw it learns it.
	c := openStore(t, srv, fast)
	if got, ok, err := c.Revoked(ctx, x.Kind, x.ID); err != nil || !ok || !got.At.Equal(x.At) {
		t.Fatalf("new node: Revoked(x) = %+v, %v, %v; want x restored to Redis", got, ok, err)
	}
	if fresh, err := a.Record(ctx, storetest.RandomKey(t), time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("Record after restart = %v, %v", fresh, err)
	}
	y := revocation.Entry{Kind: revocation.KindAgent, ID: "y", At: time.Now()}
	if err := a.Revoke(ctx, y); err != nil {
		t.Fatal(err)
	}
	if got := receiveEntry(t, watch); got.ID != y.ID {
		t.Fatalf("b's watch got %+v, want %+v", got, y)
	}
}

func receiveEntry(t *testing.T, ch <-chan revocation.Entry) revocation.Entry {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no revocation within 5s")
	}
	return revocation.Entry{}
}

func rawClient(t *testing.T, srv *redistest.Server) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestResyncFindsMissedRevocation stores a revocation without its push (as
// if the push was sent while this node's subscription was down), drops the
// node's subscription, and checks that the resync finds and delivers it.
func TestResyncFindsMissedRevocation(t *testing.T) {
	srv := redistest.Start(t)
	p := uniquePrefix(t)
	b := openStore(t, srv, Config{Prefix: p})
	ctx := t.Context()
	watch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, srv)
	at := time.Unix(1_900_000_000, 42)
	if err := raw.HSet(ctx, p+"revocations", "agent:missed", fmt.Sprint(at.UnixNano())).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Revoked(ctx, revocation.KindAgent, "missed"); ok {
		t.Fatal("revocation seen without a push or resync")
	}
	if err := raw.Do(ctx, "client", "kill", "type", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	got := receiveEntry(t, watch)
	if got.Kind != revocation.KindAgent || got.ID != "missed" || !got.At.Equal(at) {
		t.Fatalf("watch got %+v after resync, want agent/missed at %s", got, at)
	}
	storetest.Eventually(t, 5*time.Second, "Revoked after resync", func() (bool, error) {
		_, ok, err := b.Revoked(ctx, revocation.KindAgent, "missed")
		if errors.Is(err, revocation.ErrUnavailable) {
			return false, nil // still resubscribing
		}
		return ok, err
	})
}

// TestStaleSubscriptionFailsClosed pauses Redis so that the subscription's
// PING goes unanswered: Revoked must fail while no word comes back.
func TestStaleSubscriptionFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	b := openStore(t, srv, Config{Prefix: uniquePrefix(t), HealthInterval: 50 * time.Millisecond, StaleAfter: 200 * time.Millisecond})
	ctx := t.Context()
	raw := rawClient(t, srv)
	if err := raw.Do(ctx, "client", "pause", "1500", "all").Err(); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 5*time.Second, "Revoked fails while Redis is silent", func() (bool, error) {
		_, _, err := b.Revoked(ctx, revocation.KindAgent, "a")
		return errors.Is(err, revocation.ErrUnavailable), nil
	})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Ready(rctx); err != nil {
		t.Fatalf("no recovery after the pause: %v", err)
	}
}

// TestCrossNodeLatency measures how long a revocation on node A takes to
// reach a watcher on node B.
func TestCrossNodeLatency(t *testing.T) {
	srv := redistest.Start(t)
	p := uniquePrefix(t)
	a, b := openStore(t, srv, Config{Prefix: p}), openStore(t, srv, Config{Prefix: p})
	ctx := t.Context()
	watch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	lat := make([]time.Duration, n)
	for i := range n {
		e := revocation.Entry{Kind: revocation.KindCapability, ID: fmt.Sprint("cap-", i)}
		start := time.Now()
		if err := a.Revoke(ctx, e); err != nil {
			t.Fatal(err)
		}
		if got := receiveEntry(t, watch); got.ID != e.ID {
			t.Fatalf("got %+v, want %s", got, e.ID)
		}
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	t.Logf("revoke on A → watch on B over loopback, %d revocations: p50 %v, p99 %v, max %v",
		n, lat[n/2], lat[n*99/100], lat[n-1])
}

func TestWaitReplicas(t *testing.T) {
	// No delay before the primary starts a replica's full sync.
	primary := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	ctx := t.Context()
	t.Run("TooFewReplicas", func(t *testing.T) {
		s := openStore(t, primary, Config{Prefix: uniquePrefix(t), WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
		fresh, err := s.Record(ctx, storetest.RandomKey(t), time.Now().Add(time.Minute))
		if !errors.Is(err, replay.ErrUnavailable) || fresh {
			t.Fatalf("Record with no replica = %v, %v; want ErrUnavailable", fresh, err)
		}
		t.Logf("%v", err)
	})
	t.Run("ReplicaAcknowledges", func(t *testing.T) {
		redistest.Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(primary.Port()))
		s := openStore(t, primary, Config{Prefix: uniquePrefix(t), WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond})
		key := storetest.RandomKey(t)
		storetest.Eventually(t, 10*time.Second, "replica acknowledges the nonce", func() (bool, error) {
			fresh, err := s.Record(ctx, key, time.Now().Add(time.Minute))
			if errors.Is(err, replay.ErrUnavailable) {
				key = storetest.RandomKey(t) // the replica is still syncing; try a new key
				return false, nil
			}
			if err == nil && !fresh {
				return false, errors.New("new key reported as a replay")
			}
			return fresh, err
		})
		if fresh, err := s.Record(ctx, key, time.Now().Add(time.Minute)); err != nil || fresh {
			t.Fatalf("replay with WAIT = %v, %v", fresh, err)
		}
	})
}

func TestClosed(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(Config{Addr: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Record(ctx, []byte("k"), time.Now().Add(time.Minute)); !errors.Is(err, replay.ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	if _, _, err := s.Revoked(ctx, revocation.KindAgent, "a"); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Revoked after Close: %v", err)
	}
	if _, err := s.Watch(ctx); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Watch after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func BenchmarkRecord(b *testing.B) {
	srv := redistest.Start(b)
	s := openStore(b, srv, Config{Prefix: uniquePrefix(b)})
	ctx := context.Background()
	k := make([]byte, 32)
	for b.Loop() {
		rand.Read(k)
		if _, err := s.Record(ctx, k, time.Now().Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	srv := redistest.Start(b)
	s := openStore(b, srv, Config{Prefix: uniquePrefix(b)})
	ctx := context.Background()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		k := make([]byte, 32)
		for pb.Next() {
			rand.Read(k)
			if _, err := s.Record(ctx, k, time.Now().Add(time.Minute)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
