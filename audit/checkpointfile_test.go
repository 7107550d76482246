package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// fakeClock is a clock whose timers fire only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { was := !t.stopped; t.stopped = true; return was }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// advance moves time on and runs the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			due = append(due, t)
		} else if !t.stopped {
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	for _, t := range due {
		t.stopped = true
		t.f()
	}
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func openWithClock(t *testing.T, path string, c *fakeClock, opts ...FileOption) *FileSink {
	t.Helper()
	o := fileOptions{keyFile: KeyPath(path), checkpoints: true, lockWait: DefaultLockWait, clock: c}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := openFile(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storedSize opens the stored checkpoint with the log's key and returns its size.
func storedSize(t *testing.T, path string) uint64 {
	t.Helper()
	k, err := LoadKey(KeyPath(path))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := Verifier(k)
	data, err := os.ReadFile(CheckpointPath(path))
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := OpenCheckpoint(data, note.VerifierList(v))
	if err != nil || !HasSignature(n, v) {
		t.Fatalf("stored checkpoint: %v", err)
	}
	l, err := ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if root, _ := l.Root(c.Size); root != c.Root {
		t.Fatalf("stored checkpoint of %d does not match the log", c.Size)
	}
	return c.Size
}

func emitN(t *testing.T, s *FileSink, n int) {
	t.Helper()
	for range n {
		if err := s.Emit(context.Background(), Event{EventID: "e", EventType: PacketAccepted}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	clk := &fakeClock{now: time.Unix(1000, 0)}
	s := openWithClock(t, path, clk)
	if _, err := os.Stat(CheckpointPath(path)); err == nil {
		t.Fatal("a checkpoint before any record")
	}
	fi, err := os.Stat(KeyPath(path))
	if err != nil || modeBitsMeaningful && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	emitN(t, s, 1)
	if got := storedSize(t, path); got != 1 {
		t.Fatalf("after the first record: checkpoint of %d", got)
	}
	// Within the interval: no rewrite, one refresh due.
	clk.advance(300 * time.Millisecond)
	emitN(t, s, 3)
	if got := storedSize(t, path); got != 1 || clk.pending() != 1 {
		t.Fatalf("within the interval: checkpoint of %d, %d timers", got, clk.pending())
	}
	clk.advance(699 * time.Millisecond)
	if got := storedSize(t, path); got != 1 {
		t.Fatalf("refreshed early: %d", got)
	}
	clk.advance(time.Millisecond)
	if got := storedSize(t, path); got != 4 || clk.pending() != 0 {
		t.Fatalf("after the interval: checkpoint of %d, %d timers", got, clk.pending())
	}
	// A record long after the last refresh is covered at once.
	clk.advance(5 * time.Second)
	emitN(t, s, 1)
	if got := storedSize(t, path); got != 5 {
		t.Fatalf("after a pause: %d", got)
	}
	emitN(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storedSize(t, path); got != 7 || clk.pending() != 0 {
		t.Fatalf("after Close: %d, %d timers", got, clk.pending())
	}
	clk.advance(time.Hour) // a stopped timer never fires after Close
	// Reopening checks the checkpoint and continues.
	s = openWithClock(t, path, clk)
	emitN(t, s, 1)
	s.Close()
	if got := storedSize(t, path); got != 8 {
		t.Fatalf("after reopening: %d", got)
	}
}

func TestCheckpointSeveralWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	clk := &fakeClock{now: time.Unix(1000, 0)}
	a := openWithClock(t, path, clk)
	b := openWithClock(t, path, clk)
	emitN(t, a, 2) // a writes the checkpoint of 1, schedules a refresh
	emitN(t, b, 3) // b catches up: its first commit covers 3, then it schedules a refresh
	if got := storedSize(t, path); got != 3 {
		t.Fatalf("b's checkpoint: %d", got)
	}
	clk.advance(time.Second) // a's refresh catches up and covers all 5; b's finds them covered
	if got := storedSize(t, path); got != 5 {
		t.Fatalf("after the refreshes: %d", got)
	}
	before, _ := os.ReadFile(CheckpointPath(path))
	b.Close()
	after, _ := os.ReadFile(CheckpointPath(path))
	if string(before) != string(after) {
		t.Fatal("Close rewrote a checkpoint that already covered the log")
	}
	emitN(t, a, 1)
	a.Close()
	if got := storedSize(t, path); got != 6 {
		t.Fatalf("after both closed: %d", got)
	}
}

// Cosignatures added to the checkpoint (by audit push) survive until the log grows.
func TestCheckpointKeepsCosignatures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	clk := &fakeClock{now: time.Unix(1000, 0)}
	s := openWithClock(t, path, clk)
	emitN(t, s, 2)
	clk.advance(time.Second) // the checkpoint covers both
	skey, vkey, _ := note.GenerateKey(rand.Reader, "witness.example")
	ws, _ := note.NewSigner(skey)
	wv, _ := note.NewVerifier(vkey)
	err := UpdateCheckpointFile(path, func(cur []byte) ([]byte, error) {
		text := strings.SplitAfter(string(cur), "\n\n")[0]
		cosigned, err := note.Sign(&note.Note{Text: strings.TrimSuffix(text, "\n")}, ws)
		if err != nil {
			return nil, err
		}
		return append(cur, strings.SplitAfter(string(cosigned), "\n\n")[1]...), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hasCosig := func() bool {
		data, _ := os.ReadFile(CheckpointPath(path))
		_, n, err := OpenCheckpoint(data, note.VerifierList(wv))
		return err == nil && HasSignature(n, wv)
	}
	if !hasCosig() {
		t.Fatal("cosignature not stored")
	}
	clk.advance(time.Second)
	s.Close() // nothing new: the checkpoint stays as it is
	s = openWithClock(t, path, clk)
	if !hasCosig() || storedSize(t, path) != 2 {
		t.Fatal("cosignature lost without new records")
	}
	emitN(t, s, 1)
	s.Close()
	if hasCosig() || storedSize(t, path) != 3 {
		t.Fatal("the checkpoint of the grown log still carries the old cosignature")
	}
}

func TestOpenChecksCheckpoint(t *testing.T) {
	setup := func(t *testing.T) (string, []string) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		s := openWithClock(t, path, &fakeClock{now: time.Unix(1, 0)})
		emitN(t, s, 4)
		s.Close()
		data, _ := os.ReadFile(path)
		lines := strings.SplitAfter(string(data), "\n")
		return path, lines[:len(lines)-1]
	}
	cases := map[string]struct {
		tamper func(path string, lines []string)
		first  uint64
	}{
		"newest removed": {func(p string, l []string) { os.WriteFile(p, []byte(strings.Join(l[:3], "")), 0o600) }, 4},
		"all removed":    {func(p string, l []string) { os.WriteFile(p, nil, 0o600) }, 1},
		"newest edited": {func(p string, l []string) {
			l[3] = strings.Replace(l[3], `"event_id":"e"`, `"event_id":"f"`, 1)
			os.WriteFile(p, []byte(strings.Join(l, "")), 0o600)
		}, 4},
		"checkpoint by another key": {func(p string, l []string) {
			data, _ := os.ReadFile(CheckpointPath(p))
			c, _ := ParseCheckpoint([]byte(strings.SplitAfter(string(data), "\n\n")[0][:len(strings.SplitAfter(string(data), "\n\n")[0])-1]))
			k, _ := LoadOrCreateKey(p+".other", c.Origin)
			msg, _ := SignCheckpoint(k, c)
			os.WriteFile(CheckpointPath(p), msg, 0o644)
		}, 0},
		"checkpoint garbage": {func(p string, l []string) { os.WriteFile(CheckpointPath(p), []byte("x"), 0o644) }, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path, lines := setup(t)
			c.tamper(path, lines)
			_, err := OpenFile(path)
			var be *BrokenError
			if !errors.As(err, &be) || be.Record != c.first {
				t.Fatalf("got %v, want a break at %d", err, c.first)
			}
		})
	}
	t.Run("key exposed", func(t *testing.T) {
		if !modeBitsMeaningful {
			t.Skip("no permission bits")
		}
		path, _ := setup(t)
		os.Chmod(KeyPath(path), 0o644)
		if _, err := OpenFile(path); !errors.Is(err, ErrKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("explicit key and origin", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "audit.jsonl")
		s, err := OpenFile(path, WithKeyFile(filepath.Join(dir, "k")), WithOrigin("example.com/audit"))
		if err != nil {
			t.Fatal(err)
		}
		emitN(t, s, 1)
		s.Close()
		data, _ := os.ReadFile(CheckpointPath(path))
		if !strings.HasPrefix(string(data), "example.com/audit\n1\n") {
			t.Fatalf("checkpoint %q", data)
		}
		if _, err := os.Stat(KeyPath(path)); err == nil {
			t.Fatal("LOG.key created")
		}
		if _, err := OpenFile(path, WithKeyFile(filepath.Join(dir, "k"))); !errors.Is(err, ErrBroken) {
			t.Fatalf("another origin: %v", err)
		}
	})
}

// A checkpoint that cannot be written fails the next Emit (closed), until it can.
func TestCheckpointFailureFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	clk := &fakeClock{now: time.Unix(1000, 0)}
	s := openWithClock(t, path, clk)
	defer s.Close()
	emitN(t, s, 1)
	os.Remove(CheckpointPath(path))
	os.Mkdir(CheckpointPath(path), 0o700) // unreadable and not replaceable by a file
	emitN(t, s, 1)
	clk.advance(time.Second)
	err := s.Emit(context.Background(), Event{EventID: "refused"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Emit with a failed checkpoint: %v", err)
	}
	os.Remove(CheckpointPath(path))
	emitN(t, s, 1)
	if got := storedSize(t, path); got != 2 {
		t.Fatalf("after recovery: %d", got)
	}
	l, _ := ReadLog(path)
	if _, found := l.Find("refused"); found || l.Size() != 3 {
		t.Fatalf("the refused event was recorded (size %d)", l.Size())
	}
}
