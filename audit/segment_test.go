package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testRotate = 700 // bytes: a few records per segment

func rotEvent(i int) Event {
	return Event{EventID: fmt.Sprintf("ev-%04d", i), EventType: PacketAccepted, Timestamp: time.Unix(int64(i), 0).UTC(), Payload: map[string]any{"i": i}}
}

// writeSegmented writes n records to a new log rotated at testRotate bytes and returns its
// path.
func writeSegmented(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	emitRange(t, path, 0, n, WithRotateBytes(testRotate))
	return path
}

func emitRange(t *testing.T, path string, from, n int, opts ...FileOption) {
	t.Helper()
	s, err := OpenFile(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if err := s.Emit(context.Background(), rotEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkWhole checks that the log at path verifies as n records and matches its
// checkpoint.
func checkWhole(t *testing.T, path string, n uint64) {
	t.Helper()
	if got, _, err := VerifyFile(path); err != nil || got != n {
		t.Fatalf("VerifyFile: %d records, %v; want %d", got, err, n)
	}
	l, cp, err := ReadLogAndCheckpoint(path)
	if err != nil || l.Size() != n {
		t.Fatalf("ReadLog: %v, %v", l, err)
	}
	key, err := LoadKey(KeyPath(path))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := OpenCheckpoint(cp, note.VerifierList(key.(*logKey).ver))
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != n {
		t.Fatalf("checkpoint covers %d, want %d", c.Size, n)
	}
	if root, _ := l.Root(n); root != c.Root {
		t.Fatal("checkpoint root does not match the segmented log")
	}
	for i := range n {
		p, err := l.InclusionProof(i, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(c, i, l.Line(i), p); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
	}
}

func TestRotate(t *testing.T) {
	path := writeSegmented(t, 20)
	nums, err := segmentNumbers(path)
	if err != nil || len(nums) < 3 {
		t.Fatalf("segments %v, %v: want several", nums, err)
	}
	for _, k := range nums {
		fi, err := os.Stat(SegmentPath(path, k))
		if err != nil || fi.Size() > testRotate {
			t.Fatalf("segment %d: %v, %v", k, fi.Size(), err)
		}
	}
	checkWhole(t, path, 20)

	// Reopen with rotation, then without: the chain and the tree run on.
	emitRange(t, path, 20, 5, WithRotateBytes(testRotate))
	checkWhole(t, path, 25)
	emitRange(t, path, 25, 5)
	checkWhole(t, path, 30)
	l, err := ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if got, ok := l.Find(fmt.Sprintf("ev-%04d", i)); !ok || got != uint64(i) {
			t.Fatalf("event %d found at %d, %v", i, got, ok)
		}
	}
}

func TestRotateOversizedBatch(t *testing.T) {
	// A record larger than the limit goes alone in a file; it is not split.
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	emitRange(t, path, 0, 3, WithRotateBytes(10))
	nums, _ := segmentNumbers(path)
	if len(nums) != 2 {
		t.Fatalf("segments %v, want 2 (one record each, the third active)", nums)
	}
	checkWhole(t, path, 3)
}

func TestSegmentTampering(t *testing.T) {
	seg := func(path string, k int) string { return SegmentPath(path, k) }
	lines := func(t *testing.T, p string) []string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, path string)
		chain  bool   // the chain alone (VerifyFile, ReadLog) detects it; else only the checkpoint
		names  string // the file the error names
	}{
		{"oldest segment deleted", func(t *testing.T, p string) { os.Remove(seg(p, 1)) }, true, "audit.jsonl.000001 is missing"},
		{"middle segment deleted", func(t *testing.T, p string) { os.Remove(seg(p, 2)) }, true, "audit.jsonl.000002 is missing"},
		{"newest sealed segment deleted", func(t *testing.T, p string) {
			nums, _ := segmentNumbers(p)
			os.Remove(seg(p, nums[len(nums)-1]))
		}, true, "audit log audit.jsonl: "},
		{"segments swapped", func(t *testing.T, p string) {
			os.Rename(seg(p, 1), p+".tmp")
			os.Rename(seg(p, 2), seg(p, 1))
			os.Rename(p+".tmp", seg(p, 2))
		}, true, "audit log audit.jsonl.000001: "},
		{"segment truncated at a record", func(t *testing.T, p string) {
			ls := lines(t, seg(p, 1))
			os.WriteFile(seg(p, 1), []byte(strings.Join(ls[:len(ls)-1], "")), 0o600)
		}, true, "audit log audit.jsonl.000002: "},
		{"segment truncated mid-record", func(t *testing.T, p string) {
			data, _ := os.ReadFile(seg(p, 2))
			os.WriteFile(seg(p, 2), data[:len(data)-5], 0o600)
		}, true, "audit log audit.jsonl.000002: "},
		{"record edited in an old segment", func(t *testing.T, p string) {
			data, _ := os.ReadFile(seg(p, 1))
			os.WriteFile(seg(p, 1), []byte(strings.Replace(string(data), `"i":0`, `"i":9`, 1)), 0o600)
		}, true, "audit log audit.jsonl.000001: "},
		{"last record of a segment edited", func(t *testing.T, p string) {
			ls := lines(t, seg(p, 2))
			ls[len(ls)-1] = strings.Replace(ls[len(ls)-1], `"i":`, `"j":`, 1)
			os.WriteFile(seg(p, 2), []byte(strings.Join(ls, "")+"\n"), 0o600)
		}, true, "audit log audit.jsonl.000003: "},
		{"segment substituted from another log", func(t *testing.T, p string) {
			other := filepath.Join(t.TempDir(), "audit.jsonl")
			emitRange(t, other, 100, 20, WithRotateBytes(testRotate))
			data, _ := os.ReadFile(seg(other, 2))
			os.WriteFile(seg(p, 2), data, 0o600)
		}, true, "audit log audit.jsonl.000002: "},
		{"newest segment cut", func(t *testing.T, p string) {
			ls := lines(t, p)
			os.WriteFile(p, []byte(strings.Join(ls[:len(ls)-1], "")), 0o600)
		}, false, "were removed"},
		{"active file deleted", func(t *testing.T, p string) { os.Remove(p) }, false, "were removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeSegmented(t, 20)
			c.tamper(t, path)
			_, _, verr := VerifyFile(path)
			_, rerr := ReadLog(path)
			_, oerr := OpenFile(path, WithRotateBytes(testRotate))
			errs := map[string]error{"OpenFile": oerr}
			if c.chain {
				errs["VerifyFile"], errs["ReadLog"] = verr, rerr
			} else if verr != nil || rerr != nil {
				t.Fatalf("a chain-intact prefix should read: %v, %v", verr, rerr)
			}
			for what, err := range errs {
				var be *BrokenError
				if !errors.As(err, &be) || !strings.Contains(err.Error(), c.names) {
					t.Errorf("%s: %v; want a *BrokenError naming %q", what, err, c.names)
				}
			}
		})
	}
}

// TestRotateCrash cuts a rotation short after each step, as a crash would (the sink is
// abandoned without its Close), and checks that the log opens, verifies and holds every
// record acknowledged before.
func TestRotateCrash(t *testing.T) {
	for _, step := range []string{"renamed", "created"} {
		t.Run(step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			s, err := OpenFile(path, WithRotateBytes(testRotate))
			if err != nil {
				t.Fatal(err)
			}
			s.crashAt = func(got string) bool { return got == step }
			acked := 0
			for i := 0; ; i++ {
				if err := s.Emit(context.Background(), rotEvent(i)); err != nil {
					break
				}
				acked++
			}
			s.f.Close() // the crash: the lock goes with the process
			if step == "renamed" {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the active file should be missing after the rename: %v", err)
				}
			}
			if n, _, err := VerifyFile(path); err != nil || n != uint64(acked) {
				t.Fatalf("after the crash: %d records, %v; want %d", n, err, acked)
			}
			emitRange(t, path, acked, 10, WithRotateBytes(testRotate))
			checkWhole(t, path, uint64(acked+10))
		})
	}
}

// TestRotateConcurrent has two sinks (as two processes would) on one log, each with
// goroutines emitting across many rotations.
func TestRotateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const sinks, goroutines, each = 2, 4, 25
	var ss []*FileSink
	for range sinks {
		s, err := OpenFile(path, WithRotateBytes(testRotate))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, sinks*goroutines*each)
	for si, s := range ss {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if err := s.Emit(context.Background(), rotEvent((si*goroutines+g)*each+i)); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range ss {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	const total = sinks * goroutines * each
	checkWhole(t, path, total)
	l, _ := ReadLog(path)
	for i := range total {
		if _, ok := l.Find(fmt.Sprintf("ev-%04d", i)); !ok {
			t.Fatalf("event %d missing", i)
		}
	}
	if nums, _ := segmentNumbers(path); len(nums) < 10 {
		t.Fatalf("only %d rotations", len(nums))
	}
}
