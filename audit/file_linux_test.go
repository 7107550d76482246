package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A write cut short (here by the file size limit) leaves no partial record behind, and
// the sink reports the failure.
func TestShortWriteIsUndone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Emit(ctx, Event{EventID: "1"}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	lim := old
	lim.Cur = uint64(fi.Size()) + 100
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	err = s.Emit(ctx, Event{EventID: "2", Payload: map[string]any{"pad": strings.Repeat("x", 250)}})
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "write") {
		t.Fatalf("got %v, want a write failure", err)
	}
	if after, _ := os.Stat(path); after.Size() != fi.Size() {
		t.Fatalf("log is %d bytes, was %d: partial record left", after.Size(), fi.Size())
	}
	if err := s.Emit(ctx, Event{EventID: "3"}); err != nil {
		t.Fatalf("after the limit was lifted: %v", err)
	}
	if n, _, err := VerifyFile(path); err != nil || n != 2 {
		t.Fatalf("%d, %v", n, err)
	}
}
