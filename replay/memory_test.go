package replay_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

func TestMemorySuite(t *testing.T) {
	for _, shards := range []int{1, 32} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			storetest.RunReplay(t, func(t *testing.T) storetest.ReplayEnv {
				c := storetest.NewClock(storetest.Epoch())
				return storetest.ReplayEnv{Store: replay.NewMemory(replay.MemoryConfig{Now: c.Now, Shards: shards}), Clock: c}
			})
		})
	}
}

func ExampleMemory() {
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := replay.NewMemory(replay.MemoryConfig{
		MaxEntries: 1000,
		Now:        func() time.Time { return clock },
	})
	ctx := context.Background()
	key := []byte("sha256(fingerprint || nonce).....") // 32 bytes in practice
	expires := clock.Add(2 * time.Minute)

	fresh, err := store.Record(ctx, key, expires)
	fmt.Println(fresh, err)
	fresh, err = store.Record(ctx, key, expires)
	fmt.Println(fresh, err)

	clock = expires // the key expires at expiresAt and may be recorded again
	fresh, err = store.Record(ctx, key, clock.Add(time.Minute))
	fmt.Println(fresh, err)
	// Output:
	// true <nil>
	// false <nil>
	// true <nil>
}

// seqKey returns a distinct 32-byte key for i.
func seqKey(salt []byte, i uint64) []byte {
	k := make([]byte, 32)
	copy(k, salt)
	binary.BigEndian.PutUint64(k[24:], i)
	return k
}

func randomSalt(t testing.TB) []byte {
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	return salt
}

func TestMemoryFullNeverEvicts(t *testing.T) {
	c := storetest.NewClock(storetest.Epoch())
	m := replay.NewMemory(replay.MemoryConfig{MaxEntries: 100, Now: c.Now, Shards: 8})
	ctx := t.Context()
	salt := randomSalt(t)
	for i := range uint64(100) {
		if fresh, err := m.Record(ctx, seqKey(salt, i), c.Now().Add(time.Duration(i+1)*time.Second)); err != nil || !fresh {
			t.Fatalf("key %d: %v, %v", i, fresh, err)
		}
	}
	fresh, err := m.Record(ctx, seqKey(salt, 100), c.Now().Add(time.Hour))
	if !errors.Is(err, replay.ErrFull) || !errors.Is(err, replay.ErrUnavailable) || fresh {
		t.Fatalf("Record when full = %v, %v; want an error wrapping ErrFull and ErrUnavailable", fresh, err)
	}
	// A flood while full leaves every live key in place.
	for i := range uint64(1000) {
		if _, err := m.Record(ctx, seqKey(salt, 1000+i), c.Now().Add(time.Hour)); !errors.Is(err, replay.ErrFull) {
			t.Fatalf("flood key %d: %v", i, err)
		}
	}
	for i := range uint64(100) {
		if fresh, err := m.Record(ctx, seqKey(salt, i), c.Now().Add(time.Hour)); err != nil || fresh {
			t.Fatalf("live key %d after the flood: fresh=%v err=%v; want a replay", i, fresh, err)
		}
	}
	// Replays of live keys are still answered when full.
	// Once the first key expires there is room for exactly one more, even
	// though no write touched the expired key's shard since.
	c.Advance(time.Second)
	if got := m.Len(); got != 99 {
		t.Fatalf("Len = %d, want 99", got)
	}
	if fresh, err := m.Record(ctx, seqKey(salt, 100), c.Now().Add(time.Hour)); err != nil || !fresh {
		t.Fatalf("Record after one expiry = %v, %v", fresh, err)
	}
	if _, err := m.Record(ctx, seqKey(salt, 101), c.Now().Add(time.Hour)); !errors.Is(err, replay.ErrFull) {
		t.Fatalf("Record = %v, want ErrFull", err)
	}
}

func TestMemoryZeroConfig(t *testing.T) {
	m := replay.NewMemory(replay.MemoryConfig{MaxEntries: -1, Shards: 1000})
	if fresh, err := m.Record(t.Context(), []byte("k"), time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("Record = %v, %v", fresh, err)
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// bytesPerLiveKey fills a store with n live 32-byte keys and returns the heap
// growth per key.
func bytesPerLiveKey(t testing.TB, n int) float64 {
	c := storetest.NewClock(storetest.Epoch())
	salt := randomSalt(t)
	before := heapInUse()
	m := replay.NewMemory(replay.MemoryConfig{MaxEntries: n, Now: c.Now})
	ctx := context.Background()
	for i := range uint64(n) {
		// Expiries spread over 15 minutes, the longest default TTL.
		exp := c.Now().Add(time.Duration(i%900_000) * time.Millisecond).Add(time.Second)
		if _, err := m.Record(ctx, seqKey(salt, i), exp); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(m)
	return float64(after-before) / float64(n)
}

func TestMemoryBytesPerLiveKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~100 MB")
	}
	for _, n := range []int{100_000, 1_000_000} {
		per := bytesPerLiveKey(t, n)
		t.Logf("%d live 32-byte keys: %.1f bytes per key", n, per)
		if per > 100 {
			t.Errorf("%d live keys: %.1f bytes per key, want <= 100", n, per)
		}
	}
}

// TestMemoryFlatOverLongRun writes keys at a steady rate for 2 simulated
// hours with a 2-minute TTL and checks that the live set and the heap stay
// flat once the first keys expire.
func TestMemoryFlatOverLongRun(t *testing.T) {
	c := storetest.NewClock(storetest.Epoch())
	m := replay.NewMemory(replay.MemoryConfig{Now: c.Now})
	ctx := context.Background()
	salt := randomSalt(t)
	const (
		ttl      = 2 * time.Minute
		step     = 2 * time.Millisecond // 500 keys per simulated second
		total    = 2 * time.Hour
		perCheck = 10 * time.Minute
		wantLive = int(ttl/step) - 1 // written in (now-ttl, now-step]
	)
	var i uint64
	var baseline uint64
	for elapsed := time.Duration(0); elapsed < total; elapsed += perCheck {
		for end := elapsed + perCheck; c.Now().Sub(storetest.Epoch()) < end; i++ {
			if fresh, err := m.Record(ctx, seqKey(salt, i), c.Now().Add(ttl)); err != nil || !fresh {
				t.Fatalf("key %d: %v, %v", i, fresh, err)
			}
			c.Advance(step)
		}
		live := m.Len()
		if live != wantLive {
			t.Fatalf("after %v: %d live keys, want %d (rate × TTL)", elapsed+perCheck, live, wantLive)
		}
		heap := heapInUse()
		if baseline == 0 {
			baseline = heap
		}
		t.Logf("after %v simulated (%d keys written): %d live, heap %.1f MB", elapsed+perCheck, i, live, float64(heap)/1e6)
		if heap > baseline+baseline/2 {
			t.Fatalf("heap grew from %d to %d bytes with a constant live set", baseline, heap)
		}
	}
}

func BenchmarkMemoryRecord(b *testing.B) {
	c := storetest.NewClock(storetest.Epoch())
	m := replay.NewMemory(replay.MemoryConfig{Now: c.Now})
	ctx := context.Background()
	salt := randomSalt(b)
	var i uint64
	for b.Loop() {
		// A steady state: keys live for 100k Records, so the table stays at
		// 100k keys and every Record also expires one.
		if _, err := m.Record(ctx, seqKey(salt, i), c.Now().Add(100*time.Second)); err != nil {
			b.Fatal(err)
		}
		c.Advance(time.Millisecond)
		i++
	}
}

func BenchmarkMemoryRecordParallel(b *testing.B) {
	m := replay.NewMemory(replay.MemoryConfig{MaxEntries: 1 << 24})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.RunParallel(func(pb *testing.PB) {
		salt := randomSalt(b)
		var i uint64
		for pb.Next() {
			if _, err := m.Record(ctx, seqKey(salt, i), exp); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkMemoryBytesPerLiveKey(b *testing.B) {
	var per float64
	for b.Loop() {
		per = bytesPerLiveKey(b, 1_000_000)
	}
	b.ReportMetric(per, "B/key")
}
