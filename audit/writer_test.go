package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// failWriter accepts ok bytes in all, then fails (or writes short, if short is set).
type failWriter struct {
	buf   bytes.Buffer
	ok    int
	short bool
	calls int
}

func (w *failWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.buf.Len()+len(p) <= w.ok {
		return w.buf.Write(p)
	}
	room := w.ok - w.buf.Len()
	w.buf.Write(p[:room])
	if w.short {
		return room, nil
	}
	return room, errors.New("disk full")
}

func TestWriterSinkLines(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		ev   Event
		want func(t *testing.T, got Event)
	}{
		{"plain", Event{EventID: "e1", EventType: PacketAccepted, Timestamp: ts, Payload: map[string]any{"packet_id": "p"}},
			func(t *testing.T, got Event) {
				if got.EventID != "e1" || got.EventType != PacketAccepted || !got.Timestamp.Equal(ts) || got.Payload["packet_id"] != "p" {
					t.Fatalf("round trip: %+v", got)
				}
			}},
		{"hostile strings are bounded", Event{EventID: strings.Repeat("x", 5000), Payload: map[string]any{"k": strings.Repeat("\xff", 300)}},
			func(t *testing.T, got Event) {
				if len(got.EventID) > MaxStringBytes || !strings.Contains(got.EventID, "truncated 5000 bytes") {
					t.Fatalf("event id not bounded: %q", got.EventID)
				}
			}},
		{"no payload", Event{EventID: "e2"},
			func(t *testing.T, got Event) {
				if got.Payload != nil {
					t.Fatalf("payload %v", got.Payload)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := NewWriterSink(&buf)
			if err := s.Emit(context.Background(), c.ev); err != nil {
				t.Fatal(err)
			}
			line := buf.String()
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("not one line: %q", line)
			}
			if want, _ := MarshalLine(c.ev); line != string(want) {
				t.Fatalf("line %q, want MarshalLine's %q", line, want)
			}
			var got Event
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatal(err)
			}
			c.want(t, got)
		})
	}
}

func TestWriterSinkFailureIsSticky(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run(fmt.Sprintf("short=%v", short), func(t *testing.T) {
			w := &failWriter{ok: 300, short: short} // one 202-byte line fits, the second does not
			s := NewWriterSink(w)
			if err := s.Ready(context.Background()); err != nil {
				t.Fatalf("Ready before any write: %v", err)
			}
			ev := Event{EventID: "e", EventType: PacketRejected, Payload: map[string]any{"pad": strings.Repeat("p", 40)}}
			var err error
			emitted := 0
			for range 10 {
				if err = s.Emit(context.Background(), ev); err != nil {
					break
				}
				emitted++
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("failed write: %v, want ErrUnavailable", err)
			}
			if short && !errors.Is(err, io.ErrShortWrite) {
				t.Fatalf("short write: %v", err)
			}
			calls := w.calls
			if err2 := s.Emit(context.Background(), Event{EventID: "tiny"}); !errors.Is(err2, ErrUnavailable) || err2 != err {
				t.Fatalf("after a failure: %v, want the same sticky error", err2)
			}
			if w.calls != calls {
				t.Fatal("wrote after a failed write")
			}
			if s.Err() != err || s.Ready(context.Background()) != err {
				t.Fatalf("Err() = %v, Ready() = %v", s.Err(), s.Ready(context.Background()))
			}
			if emitted != 1 {
				t.Fatalf("emitted %d before the failure, want 1", emitted)
			}
		})
	}
}

func TestWriterSinkContext(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriterSink(&buf)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Emit(ctx, Event{EventID: "e"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if buf.Len() != 0 || s.Err() != nil {
		t.Fatal("a cancelled Emit wrote or broke the sink")
	}
}

func TestWriterSinkConcurrentLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	s := NewWriterSink(&buf)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := Event{EventID: fmt.Sprintf("w%d-%d", w, i), Payload: map[string]any{"pad": strings.Repeat("z", 200)}}
				if err := s.Emit(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for line := range strings.Lines(buf.String()) {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("interleaved line %q: %v", line, err)
		}
		seen[ev.EventID] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct events, want %d", len(seen), workers*each)
	}
}
