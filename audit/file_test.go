package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
