package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

func writeLog(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := Event{EventID: string(rune('a' + i)), EventType: PacketAccepted, Timestamp: time.Unix(int64(i), 0).UTC(), Payload: map[string]any{"i": i}}
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, _ := os.ReadFile(path)
	return path, strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestHashChain(t *testing.T) {
	path, lines := writeLog(t, 5)
	f, _ := os.Open(path)
	n, _, err := Verify(f)
	f.Close()
	if err != nil || n != 5 {
		t.Fatalf("intact log: %d, %v", n, err)
	}
	// Reopening continues the chain.
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Emit(context.Background(), Event{EventType: PacketRejected})
	s.Close()
	f, _ = os.Open(path)
	if n, _, err := Verify(f); err != nil || n != 6 {
		t.Fatalf("after reopen: %d, %v", n, err)
	}
	f.Close()

	join := func(ls ...string) string { return strings.Join(ls, "") }
	cases := map[string]struct {
		log      string
		brokenAt string
	}{
		"deleted record":   {join(lines[0], lines[2], lines[3], lines[4]), "record 2"},
		"reordered":        {join(lines[0], lines[2], lines[1], lines[3], lines[4]), "record 2"},
		"edited payload":   {join(lines[0], strings.Replace(lines[1], `"i":1`, `"i":7`, 1), lines[2], lines[3], lines[4]), "record 3"},
		"first removed":    {join(lines[1], lines[2]), "record 1"},
		"garbage inserted": {join(lines[0], "{}\n", lines[1]), "record 2"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Verify(bytes.NewReader([]byte(c.log)))
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), c.brokenAt) {
				t.Fatalf("got %v, want a break at %s", err, c.brokenAt)
			}
		})
	}
	// A tampered log cannot be appended to.
	os.WriteFile(path, []byte(join(lines[0], lines[2])), 0o600)
	if _, err := OpenFile(path); !errors.Is(err, ErrBroken) {
		t.Fatalf("OpenFile on a broken log: %v", err)
	}
}

func TestReaderLongLines(t *testing.T) {
	_, lines := writeLog(t, 3)
	const limit = 4096
	long := strings.Repeat("x", limit+1)
	join := func(ls ...string) string { return strings.Join(ls, "") }
	validLong := func(seq int, prev string) string { // a well-formed record over the limit
		return fmt.Sprintf(`{"pad":%q,"seq":%d,"prev_hash":%q}`, long, seq, prev) + "\n"
	}
	cases := map[string]struct {
		log, brokenAt string
	}{
		"first line too long":              {long + "\n" + join(lines...), "record 1 is longer"},
		"middle line too long":             {join(lines[0], long+"\n", lines[1]), "record 2 is longer"},
		"last line too long, no newline":   {join(lines[0], lines[1], long), "record 3 is longer"},
		"a valid record, but too long":     {join(lines[0], validLong(2, hashOf(lines[0]))), "record 2 is longer"},
		"long line of newlines' neighbour": {join(lines[0], "\n"+long), "blank line after record 1"},
		"unterminated last record":         {join(lines[0], strings.TrimSuffix(lines[1], "\n")), "record 2 is incomplete"},
		"truncated mid-record":             {join(lines[0], lines[1][:len(lines[1])/2]), "record 2 is incomplete"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var ch chain
			err := ch.read(strings.NewReader(c.log), limit)
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), c.brokenAt) {
				t.Fatalf("got %v, want %q", err, c.brokenAt)
			}
		})
	}
	// A line exactly at the limit (newline included) is read.
	rec := validLong(1, "")
	var ch chain
	if err := ch.read(strings.NewReader(rec), len(rec)); err != nil || ch.n != 1 {
		t.Fatalf("line at the limit: %d, %v", ch.n, err)
	}
	if err := (&chain{}).read(strings.NewReader(rec), len(rec)-1); !errors.Is(err, ErrBroken) {
		t.Fatalf("line one over the limit: %v", err)
	}
	// The real limit: a 17 MiB line is a broken record, not a read error.
	huge := join(lines[0], strings.Repeat("y", 17<<20), "\n")
	if _, _, err := Verify(strings.NewReader(huge)); !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "record 2 is longer than 16777216 bytes") {
		t.Fatalf("17 MiB line: %v", err)
	}
}

func hashOf(line string) string { return sha(strings.TrimSuffix(line, "\n")) }

// A log that reads back intact whatever the events held.
func TestHostileEventsInTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("<\x00\u2028", 300_000) // escapes to about six times its size
	actions := make([]string, 5000)
	for i := range actions {
		actions[i] = huge[:i%500]
	}
	events := []Event{
		{EventID: huge, CorrelationID: huge, IdempotencyKey: huge, Payload: map[string]any{"packet_id": huge, "nonce": huge, "detail": huge}},
		{EventType: PacketRejected, Payload: map[string]any{"actions": actions, "from_agent": huge}},
		{EventType: "\xff\xfe" + huge, Payload: map[string]any{huge: map[string]any{huge: []any{huge, deep(100)}}}},
		{Payload: map[string]any{"d": deep(1000)}},
		{},
	}
	for i, ev := range events {
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	s.Close()
	n, last, err := VerifyFile(path)
	if err != nil || n != uint64(len(events)) || len(last) != 64 {
		t.Fatalf("%d, %q, %v", n, last, err)
	}
	data, _ := os.ReadFile(path)
	for i, line := range strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n") {
		if len(line) > MaxLineBytes {
			t.Errorf("record %d: %d bytes", i+1, len(line))
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		checkBounded(t, rec["payload"])
	}
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const sinks, goroutines, each = 4, 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, sinks*goroutines*each)
	for i := range sinks {
		s, err := OpenFile(path) // separate descriptors lock each other out, as processes do
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					ev := Event{EventID: fmt.Sprintf("%d-%d-%d", i, g, k), EventType: PacketAccepted, Payload: map[string]any{"pad": strings.Repeat("p", 100*k)}}
					errs <- s.Emit(context.Background(), ev)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n, _, err := VerifyFile(path)
	if err != nil || n != sinks*goroutines*each {
		t.Fatalf("%d records, %v", n, err)
	}
	data, _ := os.ReadFile(path)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var rec Record
		json.Unmarshal([]byte(line), &rec)
		if seen[rec.EventID] {
			t.Fatalf("event %s twice", rec.EventID)
		}
		seen[rec.EventID] = true
	}
}

// A writer re-reads, under the lock, what others appended since it last wrote.
func TestCatchUp(t *testing.T) {
	ctx := context.Background()
	emit := func(t *testing.T, s *FileSink, id string) error {
		t.Helper()
		return s.Emit(ctx, Event{EventID: id, EventType: PacketAccepted})
	}
	open := func(t *testing.T, path string) *FileSink {
		t.Helper()
		s, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("another writer appended", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		a, b := open(t, path), open(t, path)
		for i, s := range []*FileSink{a, b, b, a, b, a, a} {
			if err := emit(t, s, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		if n, _, err := VerifyFile(path); err != nil || n != 7 {
			t.Fatalf("%d, %v", n, err)
		}
	})
	tamper := map[string]struct {
		do   func(path string, data []byte)
		want string
	}{
		"the log shrank": {func(path string, data []byte) { os.WriteFile(path, data[:len(data)/2], 0o600) }, "shrank"},
		"garbage appended": {func(path string, data []byte) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("{\"seq\":99}\n")
			f.Close()
		}, "record 3 has seq 99"},
		"half a record appended": {func(path string, data []byte) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(`{"seq":3,`)
			f.Close()
		}, "record 3 is incomplete"},
	}
	for name, c := range tamper {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			a := open(t, path)
			emit(t, a, "1")
			emit(t, a, "2")
			data, _ := os.ReadFile(path)
			c.do(path, data)
			err := emit(t, a, "3")
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrBroken %q", err, c.want)
			}
			if _, err := OpenFile(path); !errors.Is(err, ErrBroken) {
				t.Fatalf("a new writer: %v", err)
			}
		})
	}
}

func TestLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := openFile(path, noWait())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holder, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer holder.Close()
	if err := filelock.Lock(holder); err != nil {
		t.Fatal(err)
	}
	attempts := map[string]func() error{
		"append": func() error { return s.Emit(context.Background(), Event{EventID: "x"}) },
		"open":   func() error { _, err := openFile(path, noWait()); return err },
		"verify": func() error { _, _, err := verifyFile(path, 0); return err },
	}
	for name, try := range attempts {
		t.Run(name, func(t *testing.T) {
			if err := try(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "locked by another process") {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
	filelock.Unlock(holder)
	if err := s.Emit(context.Background(), Event{EventID: "y"}); err != nil {
		t.Fatalf("after the holder let go: %v", err)
	}
	if n, _, err := verifyFile(path, 0); err != nil || n != 1 {
		t.Fatalf("%d, %v", n, err)
	}
}

func TestSinkFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("write fails", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		s, _ := OpenFile(path)
		s.Emit(ctx, Event{EventID: "1"})
		s.f.Close() // the descriptor fails underneath the sink
		for range 2 {
			if err := s.Emit(ctx, Event{EventID: "2"}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		}
		if n, _, err := VerifyFile(path); err != nil || n != 1 {
			t.Fatalf("%d, %v", n, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, _ := OpenFile(filepath.Join(t.TempDir(), "audit.jsonl"))
		s.Close()
		if err := s.Emit(ctx, Event{}); !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrClosed) {
			t.Fatalf("got %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		s, _ := OpenFile(filepath.Join(t.TempDir(), "audit.jsonl"))
		defer s.Close()
		c, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Emit(c, Event{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestOpenFailures(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"a directory":         dir,
		"in a missing folder": filepath.Join(dir, "missing", "audit.jsonl"),
	}
	if p := fifo(t, dir); p != "" {
		cases["a FIFO"] = p
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := OpenFile(path); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("OpenFile: %v, want ErrUnavailable", err)
			}
			if _, _, err := VerifyFile(path); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("VerifyFile: %v, want ErrUnavailable", err)
			}
		})
	}
}

// noWait is OpenFile's defaults with no lock wait.
func noWait() fileOptions {
	return fileOptions{keyFile: KeyPath("x"), checkpoints: false, clock: realClock{}}
}

// TestGroupCommitTakesAllWaiting: records emitted while a commit is in flight wait for it
// and then all go into the next commit, one write and one fsync.
func TestGroupCommitTakesAllWaiting(t *testing.T) {
	s, err := OpenFile(filepath.Join(t.TempDir(), "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queued := func() int {
		s.queueMu.Lock()
		defer s.queueMu.Unlock()
		return len(s.queue)
	}
	s.ioMu.Lock() // the first commit blocks here, as on a slow fsync
	errs := make(chan error, 4)
	emit := func(i int) {
		errs <- s.Emit(context.Background(), Event{EventID: fmt.Sprintf("e%d", i), EventType: PacketAccepted})
	}
	go emit(0)
	for s.queueMu.Lock(); !s.committing || len(s.queue) > 0; s.queueMu.Lock() {
		s.queueMu.Unlock() // wait until the committer has taken record 0
		runtime.Gosched()
	}
	s.queueMu.Unlock()
	for i := 1; i <= 3; i++ {
		go emit(i)
	}
	for queued() < 3 {
		runtime.Gosched()
	}
	s.ioMu.Unlock()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.ioMu.Lock()
	commits, seq := s.commits, s.seq
	s.ioMu.Unlock()
	if commits != 2 || seq != 4 {
		t.Errorf("%d commits for %d records, want 2 for 4", commits, seq)
	}
}
