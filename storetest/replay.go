package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/replay"
)

// ReplayEnv is one fresh replay store under test.
type ReplayEnv struct {
	Store replay.Store
	// Clock is the store's clock, or nil when the store runs on real time.
	Clock *Clock
}

// RunReplay runs the replay behaviour suite. open is called once per case and
// must return an empty store; it registers its own cleanup with t.
func RunReplay(t *testing.T, open func(t *testing.T) ReplayEnv) {
	cases := []struct {
		name string
		run  func(t *testing.T, env ReplayEnv)
	}{
		{"FreshThenReplay", replayFreshThenReplay},
		{"KeysIndependent", replayKeysIndependent},
		{"InvalidKey", replayInvalidKey},
		{"Expiry", replayExpiry},
		{"PastExpiry", replayPastExpiry},
		{"ConcurrentSameKey", replayConcurrentSameKey},
		{"ConcurrentDistinctKeys", replayConcurrentDistinctKeys},
		{"ManyExpiries", replayManyExpiries},
		{"SeenRecordsNothing", replaySeenRecordsNothing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// RandomKey returns a random 32-byte replay key.
func RandomKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRecord(t *testing.T, s replay.Store, key []byte, exp time.Time, want bool) {
	t.Helper()
	fresh, err := s.Record(t.Context(), key, exp)
	if err != nil {
		t.Fatalf("Record(%x): %v", key, err)
	}
	if fresh != want {
		t.Fatalf("Record(%x) fresh = %v, want %v", key, fresh, want)
	}
}

func replayFreshThenReplay(t *testing.T, env ReplayEnv) {
	k := RandomKey(t)
	exp := now(env.Clock).Add(time.Minute)
	mustRecord(t, env.Store, k, exp, true)
	mustRecord(t, env.Store, k, exp, false)
	mustRecord(t, env.Store, k, exp.Add(time.Hour), false)
}

func replayKeysIndependent(t *testing.T, env ReplayEnv) {
	a := RandomKey(t)
	b := bytes.Clone(a)
	b[31] ^= 1
	keys := [][]byte{
		a, b,
		a[:1], a[:2], a[:31], append(bytes.Clone(a), 0),
		bytes.Repeat([]byte{0}, 32), bytes.Repeat([]byte{0}, 33),
		bytes.Repeat([]byte{0xff}, replay.MaxKeyLen),
	}
	exp := now(env.Clock).Add(time.Minute)
	for _, k := range keys {
		mustRecord(t, env.Store, k, exp, true)
	}
	for _, k := range keys {
		mustRecord(t, env.Store, k, exp, false)
	}
}

func replayInvalidKey(t *testing.T, env ReplayEnv) {
	exp := now(env.Clock).Add(time.Minute)
	for _, k := range [][]byte{nil, {}, make([]byte, replay.MaxKeyLen+1)} {
		t.Run(fmt.Sprintf("len=%d", len(k)), func(t *testing.T) {
			fresh, err := env.Store.Record(t.Context(), k, exp)
			if !errors.Is(err, replay.ErrInvalidKey) || !errors.Is(err, replay.ErrUnavailable) || fresh {
				t.Fatalf("Record = %v, %v; want an error wrapping ErrInvalidKey and ErrUnavailable", fresh, err)
			}
		})
	}
}

func replayExpiry(t *testing.T, env ReplayEnv) {
	k := RandomKey(t)
	if env.Clock == nil {
		mustRecord(t, env.Store, k, time.Now().Add(realTTL), true)
		// Within the TTL only if this check runs quickly; a slow machine
		// could see it expired already, so accept either but require that
		// the key becomes fresh after the TTL.
		Eventually(t, waitDeadline, "key recordable after its TTL", func() (bool, error) {
			return env.Store.Record(t.Context(), k, time.Now().Add(time.Minute))
		})
		mustRecord(t, env.Store, k, time.Now().Add(time.Minute), false)
		return
	}
	exp := env.Clock.Now().Add(10 * time.Second)
	mustRecord(t, env.Store, k, exp, true)
	env.Clock.Advance(10*time.Second - time.Nanosecond)
	mustRecord(t, env.Store, k, exp, false) // live until the last nanosecond
	env.Clock.Advance(time.Nanosecond)      // now == expiresAt: expired
	mustRecord(t, env.Store, k, env.Clock.Now().Add(time.Second), true)
	mustRecord(t, env.Store, k, env.Clock.Now().Add(time.Second), false)
	env.Clock.Advance(time.Hour) // long past: memory reclaimed, still recordable
	mustRecord(t, env.Store, k, env.Clock.Now().Add(time.Second), true)
}

func replayPastExpiry(t *testing.T, env ReplayEnv) {
	n := now(env.Clock)
	k := RandomKey(t)
	// Outside its window already: fresh, and nothing is stored.
	mustRecord(t, env.Store, k, n.Add(-time.Second), true)
	mustRecord(t, env.Store, k, n.Add(-time.Second), true)
	mustRecord(t, env.Store, k, n.Add(time.Minute), true)
	// A live key stays a replay whatever expiry is asked for.
	mustRecord(t, env.Store, k, n.Add(-time.Second), false)
}

func replayConcurrentSameKey(t *testing.T, env ReplayEnv) {
	const callers = 64
	for round := range 5 {
		k := RandomKey(t)
		exp := now(env.Clock).Add(time.Minute)
		var fresh atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, callers)
		for range callers {
			wg.Go(func() {
				<-start
				ok, err := env.Store.Record(t.Context(), k, exp)
				if err != nil {
					errs <- err
				}
				if ok {
					fresh.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Record: %v", round, err)
		}
		if got := fresh.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d concurrent Records of one key were fresh, want exactly 1", round, got, callers)
		}
	}
}

func replayConcurrentDistinctKeys(t *testing.T, env ReplayEnv) {
	const callers, perCaller = 64, 20
	exp := now(env.Clock).Add(time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range perCaller {
				k := RandomKey(t)
				ok, err := env.Store.Record(t.Context(), k, exp)
				if err == nil && !ok {
					err = fmt.Errorf("new key %x reported as a replay", k)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// replayManyExpiries records keys with staggered expiries and checks that each
// becomes recordable exactly when it expires (injected clock only).
func replayManyExpiries(t *testing.T, env ReplayEnv) {
	if env.Clock == nil {
		t.Skip("needs an injected clock; Expiry covers real-time backends")
	}
	const n = 2000
	base := env.Clock.Now()
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = RandomKey(t)
		mustRecord(t, env.Store, keys[i], base.Add(time.Duration(i+1)*7*time.Millisecond), true)
	}
	for step := 1; step <= n; step += 97 {
		env.Clock.Set(base.Add(time.Duration(step) * 7 * time.Millisecond))
		// Keys 0..step-1 have expired, key step is live.
		mustRecord(t, env.Store, keys[step-1], env.Clock.Now().Add(time.Hour), true)
		if step < n {
			mustRecord(t, env.Store, keys[step], base.Add(time.Duration(step+1)*7*time.Millisecond), false)
		}
	}
}

// replaySeenRecordsNothing: Seen (the dry-run peek) reports live keys and never records.
func replaySeenRecordsNothing(t *testing.T, env ReplayEnv) {
	p, ok := env.Store.(replay.Peeker)
	if !ok {
		t.Fatalf("%T does not implement replay.Peeker", env.Store)
	}
	seen := func(k []byte) bool {
		t.Helper()
		live, err := p.Seen(t.Context(), k)
		if err != nil {
			t.Fatalf("Seen: %v", err)
		}
		return live
	}
	k := RandomKey(t)
	for range 3 {
		if seen(k) {
			t.Fatal("Seen reports a key that was never recorded")
		}
	}
	exp := now(env.Clock).Add(time.Minute)
	mustRecord(t, env.Store, k, exp, true) // the peeks did not record it
	if !seen(k) {
		t.Fatal("Seen misses a live key")
	}
	if _, err := p.Seen(t.Context(), nil); !errors.Is(err, replay.ErrInvalidKey) {
		t.Fatalf("Seen(nil) = %v, want ErrInvalidKey", err)
	}
	if env.Clock != nil {
		env.Clock.Advance(time.Minute)
		if seen(k) {
			t.Fatal("Seen reports an expired key")
		}
	}
}
