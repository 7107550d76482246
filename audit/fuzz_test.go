package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzVerify: no log content panics the chain check.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":""}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Add([]byte(`{"seq":1,"prev_hash":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, last, err := Verify(bytes.NewReader(data))
		if err == nil && n > 0 && len(last) != 64 {
			t.Fatalf("%d records but last hash %q", n, last)
		}
		if err != nil && !errors.Is(err, ErrBroken) {
			t.Fatalf("content gave a non-chain error: %v", err)
		}
	})
}

// FuzzReadLongLines: with a small line limit, every input is either a chain of lines within
// the limit or a broken record; never a read error, never a panic.
func FuzzReadLongLines(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev_hash":""}`+"\n"), uint16(8))
	f.Add([]byte(strings.Repeat("x", 300)+"\n"+`{"seq":1}`), uint16(64))
	f.Add([]byte(`{"seq":1,"prev_hash":""}`+"\n"+`{"seq":2,"prev_hash":"`+strings.Repeat("a", 64)+`"}`), uint16(25))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		if limit == 0 {
			return
		}
		var c chain
		err := c.read(bytes.NewReader(data), int(limit))
		if err != nil && !errors.Is(err, ErrBroken) {
			t.Fatalf("non-chain error: %v", err)
		}
		if err == nil {
			for line := range bytes.SplitAfterSeq(data, []byte("\n")) {
				if len(line) > int(limit) {
					t.Fatalf("accepted a line of %d bytes over the limit %d", len(line), limit)
				}
			}
			if c.bytes != int64(len(data)) {
				t.Fatalf("read %d of %d bytes", c.bytes, len(data))
			}
		}
	})
}

// FuzzBound: any payload and header strings give a record the reader accepts.
func FuzzBound(f *testing.F) {
	f.Add([]byte(`{"actions":["a","b"],"packet_id":"p"}`), "pkt-1")
	f.Add([]byte(`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":[1]}}}}}}}}}`), strings.Repeat("<", 400))
	f.Add([]byte(`[1,2,3]`), "\xff\xfe")
	f.Add([]byte(`{"x":1e400}`), "")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		var payload map[string]any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if d.Decode(&payload) != nil {
			payload = map[string]any{"raw": string(data), string(data): []any{s, string(data)}}
		}
		ev := Event{EventID: s, EventType: s, ProducerID: s, CorrelationID: s, IdempotencyKey: s, Payload: payload}
		body, err := encodeJSON(Bound(ev))
		if err != nil {
			t.Fatalf("bounded event does not encode: %v", err)
		}
		line := append(appendRecord(nil, body, 1, ""), '\n')
		if len(line) > MaxLineBytes {
			t.Fatalf("line of %d bytes", len(line))
		}
		if n, _, err := Verify(bytes.NewReader(line)); err != nil || n != 1 {
			t.Fatalf("reader refused the record: %v", err)
		}
		var back Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		checkBounded(t, back.Payload)
	})
}
