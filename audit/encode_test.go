package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// valueGen builds JSON-shaped (and some other) values from fuzz input.
type valueGen struct {
	data []byte
	strs []string
}

func (g *valueGen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *valueGen) uint64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = g.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

var genStrings = []string{"", "a", "<>&", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é", "😀", "\"\\/", "\b\f\n\r\t",
	strings.Repeat("x", 256), strings.Repeat("y", 257), strings.Repeat("é", 130), "...", "\ufffd", "a\xc3"}

func (g *valueGen) string() string {
	b := g.byte()
	if int(b)%2 == 0 && len(g.strs) > 0 {
		s := g.strs[0]
		g.strs = g.strs[1:]
		return s
	}
	s := genStrings[int(b/2)%len(genStrings)]
	if b > 200 {
		s = strings.Repeat(s, 1+int(g.byte())%8)
	}
	return s
}

var genNumbers = []json.Number{"", "0", "-0", "12.50", "1e999", "0x10", " 1", "1.", "-", "1e+", "1E-07", "007", json.Number(strings.Repeat("9", 300) + "1")}

func (g *valueGen) value(depth int) any {
	b := g.byte()
	if depth > 12 {
		b %= 12
	}
	switch b % 24 {
	case 0:
		return nil
	case 1:
		return b > 100
	case 2:
		return int(int64(g.uint64()))
	case 3:
		return int8(g.byte())
	case 4:
		return uint64(g.uint64())
	case 5:
		return math.Float64frombits(g.uint64())
	case 6:
		return float64(int8(g.byte())) / float64(1+int(g.byte()))
	case 7:
		return []float64{1e21, 1e-7, 1e20, 5e-324, math.MaxFloat64, 0.0, math.Copysign(0, -1), 1e-6, 123456789e-20}[int(g.byte())%9]
	case 8:
		return float32(math.Float32frombits(uint32(g.uint64())))
	case 9:
		return genNumbers[int(g.byte())%len(genNumbers)]
	case 10, 11:
		return g.string()
	case 12:
		return time.Unix(int64(g.uint64()%(1<<40))-(1<<39), 0).UTC()
	case 13, 14:
		n := int(g.byte()) % 80
		if n == 79 {
			return []any(nil)
		}
		l := make([]any, n)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return l
	case 15:
		n := int(g.byte()) % 80
		if n == 79 {
			return []string(nil)
		}
		l := make([]string, n)
		for i := range l {
			l[i] = g.string()
		}
		return l
	case 16, 17:
		n := int(g.byte()) % 80
		if n == 79 {
			return map[string]any(nil)
		}
		m := make(map[string]any, n)
		for range n {
			m[g.string()] = g.value(depth + 1)
		}
		return m
	case 18:
		n := int(g.byte()) % 80
		m := make(map[string]string, n)
		for range n {
			m[g.string()] = g.string()
		}
		return m
	case 19:
		return struct {
			A int `json:"a"`
		}{int(g.byte())}
	case 20:
		return []byte(g.string())
	case 21:
		return map[int]string{int(g.byte()): g.string()}
	case 22:
		return uint16(g.uint64())
	default:
		return time.Duration(g.uint64())
	}
}

func (g *valueGen) event() Event {
	ev := Event{
		EventID: g.string(), EventType: g.string(), ProducerID: g.string(), CorrelationID: g.string(), IdempotencyKey: g.string(),
		Timestamp: time.Unix(int64(g.uint64()%(1<<40))-(1<<39), int64(g.uint64()%1e9)),
	}
	switch g.byte() % 4 {
	case 0:
		ev.Timestamp = ev.Timestamp.UTC()
	case 1:
		ev.Timestamp = ev.Timestamp.In(time.FixedZone("z", int(int32(g.uint64()))%(30*3600)))
	case 2:
		ev.Timestamp = time.Date(2026, 4, 1, 12, 0, 0, int(g.byte()), time.UTC)
	}
	if m, ok := g.value(0).(map[string]any); ok {
		ev.Payload = m
	} else if g.byte()%2 == 0 {
		ev.Payload = map[string]any{"v": g.value(1)}
	}
	return ev
}

// checkEncoders checks the hand encoder against encoding/json for v, and the bound fast
// path against Bound for ev.
func checkEncoders(t *testing.T, v any, ev Event) {
	t.Helper()
	want, werr := encodeJSON(v)
	got, ok := appendValue(nil, v, 0)
	switch {
	case ok && werr != nil:
		t.Fatalf("appendValue(%#v) = %q, encoding/json fails: %v", v, got, werr)
	case ok && !bytes.Equal(got, want):
		t.Fatalf("appendValue(%#v)\n got %q\nwant %q", v, got, want)
	}
	if enc, err := encodeAny(v); (err == nil) != (werr == nil) || !bytes.Equal(enc, want) {
		t.Fatalf("encodeAny(%#v) = %q, %v; want %q, %v", v, enc, err, want, werr)
	}

	want, werr = encodeJSON(ev)
	got, ok = appendEvent(nil, ev)
	switch {
	case ok && werr != nil:
		t.Fatalf("appendEvent = %q, encoding/json fails: %v", got, werr)
	case ok && !bytes.Equal(got, want):
		t.Fatalf("appendEvent\n got %q\nwant %q", got, want)
	}
	bounded := Bound(ev)
	want, werr = encodeJSON(bounded)
	got, err := encodeEvent(boundEvent(ev))
	if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("encodeEvent(boundEvent(ev)) = %q, %v\nencodeJSON(Bound(ev)) = %q, %v", got, err, want, werr)
	}
	// A bounded event never needs encoding/json, unless its timestamp cannot be encoded.
	if _, ok := appendEvent(nil, bounded); !ok && werr == nil {
		t.Fatalf("appendEvent fell back for a bounded event %q", want)
	}
}

// FuzzEncodeMatchesEncodingJSON: the hand encoder writes exactly what encoding/json writes
// (or defers to it), and boundEvent bounds exactly as Bound does.
func FuzzEncodeMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte{}, "", "")
	f.Add([]byte{16, 5, 10, 1, 11, 2, 13, 3, 5, 0, 7, 3, 9, 2}, "k\u2028", "\xff<")
	f.Add(bytes.Repeat([]byte{16, 70, 14, 70}, 40), "a", "b")
	f.Add(bytes.Repeat([]byte{13, 9, 17, 255}, 60), "x", "\x00")
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string) {
		g := &valueGen{data: data, strs: []string{s1, s2}}
		v := g.value(0)
		ev := g.event()
		checkEncoders(t, v, ev)
		checkEncoders(t, ev.Payload, Event{Payload: map[string]any{"v": v}, Timestamp: time.Unix(0, 0)})
	})
}

func TestEncodeGoldenEvents(t *testing.T) {
	for i, ev := range goldenEvents() {
		checkEncoders(t, ev.Payload, ev)
		if i == 2 { // the typical event takes the fast path whole
			if n, ok := fits(ev.Payload, 0); !ok || n > MaxValues {
				t.Errorf("typical event: fits = %d, %v", n, ok)
			}
		}
	}
}

func TestBoundEventDoesNotAllocate(t *testing.T) {
	ev := benchEvent(3)
	if n := testing.AllocsPerRun(100, func() { _ = boundEvent(ev) }); n != 0 {
		t.Errorf("boundEvent of an event within bounds: %v allocations, want 0", n)
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { _, _ = appendEvent(buf[:0], ev) }); n != 0 {
		t.Errorf("appendEvent into a large enough buffer: %v allocations, want 0", n)
	}
}

// BenchmarkEncodeEvent compares the record encoding of a typical decision event: Bound and
// encoding/json (as before the hand encoder) against boundEvent and appendEvent (what the
// sinks do).
func BenchmarkEncodeEvent(b *testing.B) {
	ev := benchEvent(42)
	b.Run("enc=encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeJSON(Bound(ev)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("enc=hand", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			var ok bool
			if buf, ok = appendEvent(buf[:0], boundEvent(ev)); !ok {
				b.Fatal("fallback")
			}
		}
	})
}
