package pebble

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble"

	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

func openTest(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestReplaySuite(t *testing.T) {
	storetest.RunReplay(t, func(t *testing.T) storetest.ReplayEnv {
		c := storetest.NewClock(storetest.Epoch())
		return storetest.ReplayEnv{Store: openTest(t, t.TempDir(), Config{Now: c.Now}), Clock: c}
	})
}

func TestRevocationSuite(t *testing.T) {
	storetest.RunRevocation(t, func(t *testing.T) storetest.RevocationEnv {
		c := storetest.NewClock(storetest.Epoch())
		s := openTest(t, t.TempDir(), Config{Now: c.Now})
		// One process holds the directory, so the peer is the same Store.
		return storetest.RevocationEnv{Store: s, Peer: s, Clock: c}
	})
}

func TestPendingSuite(t *testing.T) {
	storetest.RunPending(t, func(t *testing.T) storetest.PendingEnv {
		c := storetest.NewClock(storetest.Epoch())
		return storetest.PendingEnv{Store: openTest(t, t.TempDir(), Config{Now: c.Now}), Clock: c}
	})
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Config{})
	_, err := Open(dir, Config{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	t.Logf("second Open: %v", err)
}

func TestOpenBadDirectory(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(f.Name(), Config{}); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Open on a file: %v, want a clear non-lock error", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	c := storetest.NewClock(storetest.Epoch())
	ctx := t.Context()
	s, err := Open(dir, Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	key := storetest.RandomKey(t)
	rev := revocation.Entry{Kind: revocation.KindAgent, ID: "a", At: c.Now()}
	if fresh, err := s.Record(ctx, key, c.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	if err := errors.Join(s.Revoke(ctx, rev), s.Put(ctx, "p", []byte("env"), c.Now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A closed Store fails closed.
	if _, err := s.Record(ctx, key, c.Now().Add(time.Minute)); !errors.Is(err, replay.ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	if _, _, err := s.Revoked(ctx, rev.Kind, rev.ID); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Revoked after Close: %v", err)
	}
	if _, _, err := s.Get(ctx, "p"); !errors.Is(err, pending.ErrUnavailable) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openTest(t, dir, Config{Now: c.Now})
	if fresh, err := s.Record(ctx, key, c.Now().Add(time.Minute)); err != nil || fresh {
		t.Fatalf("Record after reopen = %v, %v; want a replay", fresh, err)
	}
	if got, ok, err := s.Revoked(ctx, rev.Kind, rev.ID); err != nil || !ok || !got.At.Equal(rev.At) {
		t.Fatalf("Revoked after reopen = %+v, %v, %v", got, ok, err)
	}
	if env, ok, err := s.Get(ctx, "p"); err != nil || !ok || string(env) != "env" {
		t.Fatalf("Get after reopen = %q, %v, %v", env, ok, err)
	}
}

// countPrefix counts the keys under prefix p.
func countPrefix(t *testing.T, s *Store, p string) int {
	t.Helper()
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte(p), UpperBound: prefixEnd(p)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

func TestSweepDeletesExpired(t *testing.T) {
	c := storetest.NewClock(storetest.Epoch())
	s := openTest(t, t.TempDir(), Config{Now: c.Now, SweepInterval: -1})
	ctx := t.Context()
	const n = 3*sweepChunk + 10 // several sweep steps
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = storetest.RandomKey(t)
		exp := c.Now().Add(time.Minute)
		if i%2 == 1 {
			exp = c.Now().Add(time.Hour)
		}
		if _, err := s.Record(ctx, keys[i], exp); err != nil {
			t.Fatal(err)
		}
	}
	// Re-record one expired key before the sweep: its new record must survive.
	if err := s.Put(ctx, "gone", []byte("e"), c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if fresh, err := s.Record(ctx, keys[0], c.Now().Add(time.Hour)); err != nil || !fresh {
		t.Fatalf("re-record expired key: %v, %v", fresh, err)
	}
	deleted, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantLive := n/2 + 1
	if deleted != n-wantLive+1 { // expired nonces plus the pending item
		t.Fatalf("Sweep deleted %d, want %d", deleted, n-wantLive+1)
	}
	if got := countPrefix(t, s, prefixNonce); got != wantLive {
		t.Fatalf("%d nonces left, want %d", got, wantLive)
	}
	if got := countPrefix(t, s, prefixExpiry); got != wantLive {
		t.Fatalf("%d expiry index entries left, want %d", got, wantLive)
	}
	if got := countPrefix(t, s, prefixPending); got != 0 {
		t.Fatalf("%d pending items left, want 0", got)
	}
	if fresh, err := s.Record(ctx, keys[0], c.Now().Add(time.Hour)); err != nil || fresh {
		t.Fatalf("re-recorded key lost by the sweep: %v, %v", fresh, err)
	}
	if fresh, err := s.Record(ctx, keys[2], c.Now().Add(time.Hour)); err != nil || !fresh {
		t.Fatalf("swept key not recordable: %v, %v", fresh, err)
	}
}

func TestBackgroundSweep(t *testing.T) {
	c := storetest.NewClock(storetest.Epoch())
	s := openTest(t, t.TempDir(), Config{Now: c.Now, SweepInterval: 5 * time.Millisecond})
	for range 100 {
		if _, err := s.Record(t.Context(), storetest.RandomKey(t), c.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Second)
	storetest.Eventually(t, 5*time.Second, "background sweep", func() (bool, error) {
		return countPrefix(t, s, prefixNonce) == 0, nil
	})
}

func TestRecordContextCancelled(t *testing.T) {
	s := openTest(t, t.TempDir(), Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Record(ctx, storetest.RandomKey(t), time.Now().Add(time.Minute)); !errors.Is(err, replay.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context: %v", err)
	}
}

// The kill -9 test: a child process records nonces as fast as it can and
// prints each acknowledged key; the parent kills it mid-run and checks that
// every printed key is in the reopened database.

const childDirEnv = "TRUSTHANDOFF_PEBBLE_KILL9_DIR"

func TestKill9Child(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9NoAcknowledgedNonceLost")
	}
	s, err := Open(dir, Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	ctx := context.Background()
	for range 64 {
		go func() {
			for {
				k := make([]byte, 32)
				rand.Read(k)
				fresh, err := s.Record(ctx, k, time.Now().Add(time.Hour))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if fresh {
					line := hex.AppendEncode(nil, k)
					mu.Lock()
					os.Stdout.Write(append(line, '\n')) // one write: atomic on a pipe
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(30 * time.Second) // the parent kills us long before this
	os.Exit(3)
}

func TestKill9NoAcknowledgedNonceLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		keys [][]byte
		seen atomic.Int64
	)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			k, err := hex.DecodeString(sc.Text())
			if err != nil || len(k) != 32 {
				continue // the test framework's own output
			}
			mu.Lock()
			keys = append(keys, k)
			mu.Unlock()
			seen.Add(1)
		}
	}()
	// Kill once the child is well into its run: 20,000 keys or 3 s.
	deadline := time.Now().Add(3 * time.Second)
	for seen.Load() < 20_000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	killedAt := seen.Load()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-readDone
	_ = cmd.Wait()
	if len(keys) == 0 {
		t.Fatal("the child acknowledged no key before it was killed")
	}
	t.Logf("child killed after %d acknowledged keys (%d read in total)", killedAt, len(keys))

	s := openTest(t, dir, Config{})
	ctx := t.Context()
	lost := 0
	for _, k := range keys {
		fresh, err := s.Record(ctx, k, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if fresh {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged keys lost after kill -9", lost, len(keys))
	}
}

func BenchmarkRecord(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := openTest(b, b.TempDir(), Config{})
			ctx := context.Background()
			exp := time.Now().Add(time.Hour)
			if callers == 1 {
				k := make([]byte, 32)
				for b.Loop() {
					rand.Read(k)
					if _, err := s.Record(ctx, k, exp); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					k := make([]byte, 32)
					for pb.Next() {
						rand.Read(k)
						if _, err := s.Record(ctx, k, exp); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handoffs/s")
		})
	}
}
