package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden-records.jsonl from the current encoder")

// goldenEvents are the events whose record bytes are pinned in testdata: the bytes are
// hashed into the chain and read by other implementations' tools, so they must never
// change. Hostile values included.
func goldenEvents() []Event {
	ts := time.Date(2026, 4, 1, 12, 0, 0, 123456789, time.UTC)
	long := strings.Repeat("é", 200) // 400 bytes
	nested := map[string]any{"a": map[string]any{"b": []any{1, "two", 3.5, nil, true, map[string]any{"c": []any{[]any{[]any{[]any{[]any{[]any{"deep"}}}}}}}}}}
	many := map[string]any{}
	for i := range 100 {
		many[strings.Repeat("k", i%7)+string(rune('A'+i%26))+string(rune('a'+i/26))] = i
	}
	list := make([]any, 300)
	for i := range list {
		list[i] = i * i
	}
	type custom struct {
		X int    `json:"x"`
		Y string `json:"y,omitempty"`
	}
	return []Event{
		{},
		{EventID: "e1", EventType: PacketAccepted, Timestamp: ts, ProducerID: "p", CorrelationID: "c", IdempotencyKey: "c:packet_accepted"},
		benchEvent(7),
		{EventID: "html", EventType: "t<>&", Timestamp: ts, Payload: map[string]any{"<script>": "a&b<c>d", "amp": "&amp;"}},
		{EventID: "ctl\x00\x01\x1f\x7f\t\n\r\"\\/", Timestamp: ts.In(time.FixedZone("x", 3600)), Payload: map[string]any{"ctl": "\b\f\u0085 \u00a0"}},
		{EventID: "line-sep\u2028\u2029", Payload: map[string]any{"\u2028": "\u2029", "bom": "\ufeff", "emoji": "😀", "nul": "\x00"}},
		{EventID: "bad\xff\xfeutf8", EventType: "\xc3", ProducerID: "a\xc3\x28b", Payload: map[string]any{"k\xff": "v\x80", "ok": "fine"}},
		{EventID: long, CorrelationID: strings.Repeat("x", 257), IdempotencyKey: strings.Repeat("y", 256), Payload: map[string]any{"long": long, strings.Repeat("K", 300): 1}},
		{EventID: "nums", Payload: map[string]any{
			"int": 42, "neg": -7, "i64": int64(math.MinInt64), "u64": uint64(math.MaxUint64), "i8": int8(-8), "u8": uint8(255),
			"f": 3.14159, "f0": 0.0, "negzero": math.Copysign(0, -1), "big": 1e21, "small": 1e-7, "tiny": 5e-324, "max": math.MaxFloat64,
			"f32": float32(0.1), "nan": math.NaN(), "inf": math.Inf(1), "ninf": math.Inf(-1),
			"num": json.Number("12.50"), "badnum": json.Number("0x10"), "hugenum": json.Number("1e999"),
			"exp": 1e20, "exp2": 123456789e-20,
		}},
		{EventID: "nested", Payload: nested},
		{EventID: "many", Payload: many},
		{EventID: "list", Payload: map[string]any{"list": list, "strs": []string{"a", "b"}, "empty": []any{}, "nilslice": []any(nil), "emptymap": map[string]any{}, "nilmap": map[string]any(nil), "ss": map[string]string{"z": "1", "a": "2"}}},
		{EventID: "nilpayload", Payload: nil},
		{EventID: "emptypayload", Payload: map[string]any{}},
		{EventID: "other types", Timestamp: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Payload: map[string]any{
			"time": ts, "struct": custom{X: 1}, "ptr": &custom{Y: "y"}, "bytes": []byte("hi"), "ints": []int{1, 2}, "ch": make(chan int),
			"fn": func() {}, "bool": false, "nil": nil, "dur": 3 * time.Second, "err": nil, "mapint": map[int]string{2: "b", 1: "a"},
		}},
	}
}

// TestGoldenRecords pins the exact bytes of MarshalLine (testdata/golden-lines.jsonl) and
// of the log a FileSink writes (testdata/golden-records.jsonl) for the golden events.
func TestGoldenRecords(t *testing.T) {
	var lines bytes.Buffer
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range goldenEvents() {
		line, err := MarshalLine(ev)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		lines.Write(line)
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	records, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "golden-lines.jsonl", lines.Bytes())
	checkGolden(t, "golden-records.jsonl", records)
	// The pinned log verifies as it did when it was written.
	f, err := os.Open(filepath.Join("testdata", "golden-records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, _, err := Verify(f); err != nil || n != uint64(len(goldenEvents())) {
		t.Errorf("Verify(golden-records.jsonl) = %d, %v; want %d records", n, err, len(goldenEvents()))
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := bytes.SplitAfter(got, []byte("\n")), bytes.SplitAfter(want, []byte("\n"))
	if len(wl) != len(goldenEvents())+1 {
		t.Fatalf("%s holds %d lines, want %d", path, len(wl)-1, len(goldenEvents()))
	}
	for i := range max(len(gl), len(wl)) {
		if i >= len(gl) || i >= len(wl) || !bytes.Equal(gl[i], wl[i]) {
			t.Errorf("line %d differs:\n got %q\nwant %q", i+1, at(gl, i), at(wl, i))
		}
	}
}

func at(lines [][]byte, i int) []byte {
	if i < len(lines) {
		return lines[i]
	}
	return nil
}
