package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkBounded fails unless v, as decoded from a record, respects every bound.
func checkBounded(t *testing.T, v any) {
	t.Helper()
	count := 0
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		count++
		switch x := v.(type) {
		case string:
			if len(x) > MaxStringBytes || !utf8.ValidString(x) {
				t.Fatalf("string of %d bytes (valid UTF-8: %v) at depth %d", len(x), utf8.ValidString(x), depth)
			}
		case []any:
			if depth >= MaxDepth || len(x) > MaxItems {
				t.Fatalf("list of %d at depth %d", len(x), depth)
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			if depth >= MaxDepth || len(x) > MaxItems {
				t.Fatalf("object of %d at depth %d", len(x), depth)
			}
			for k, e := range x {
				if len(k) > MaxStringBytes || !utf8.ValidString(k) {
					t.Fatalf("key of %d bytes", len(k))
				}
				walk(e, depth+1)
			}
		}
	}
	walk(v, 0)
	if count > MaxValues {
		t.Fatalf("%d values, more than %d", count, MaxValues)
	}
}

// roundTrip encodes ev bounded and decodes it as a reader of the log would.
func roundTrip(t *testing.T, ev Event) (line []byte, decoded map[string]any) {
	t.Helper()
	line, err := MarshalLine(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(line) > MaxLineBytes {
		t.Fatalf("line of %d bytes", len(line))
	}
	if err := json.Unmarshal(line, &decoded); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"event_id", "event_type", "producer_id", "correlation_id", "idempotency_key"} {
		s, _ := decoded[f].(string)
		if len(s) > MaxStringBytes || !utf8.ValidString(s) {
			t.Fatalf("%s of %d bytes", f, len(s))
		}
	}
	checkBounded(t, decoded["payload"])
	return line, decoded
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBoundString(t *testing.T) {
	cases := map[string]struct {
		in         string
		unchanged  bool
		wantPrefix string
	}{
		"short":                    {in: "pkt-1", unchanged: true},
		"empty":                    {in: "", unchanged: true},
		"exactly the limit":        {in: strings.Repeat("a", MaxStringBytes), unchanged: true},
		"one byte over":            {in: strings.Repeat("a", MaxStringBytes+1), wantPrefix: strings.Repeat("a", StringPrefixBytes)},
		"a megabyte of escapes":    {in: strings.Repeat("<", 1<<20), wantPrefix: strings.Repeat("<", StringPrefixBytes)},
		"rune across the cut":      {in: strings.Repeat("a", StringPrefixBytes-1) + strings.Repeat("é", 200), wantPrefix: strings.Repeat("a", StringPrefixBytes-1)},
		"four-byte runes":          {in: strings.Repeat("😀", 100), wantPrefix: strings.Repeat("😀", StringPrefixBytes/4)},
		"short invalid UTF-8":      {in: "ok\xff\xfeok", wantPrefix: "ok\uFFFD\uFFFDok"},
		"long invalid UTF-8":       {in: strings.Repeat("\xff", 1000), wantPrefix: strings.Repeat("\uFFFD", StringPrefixBytes/3)},
		"control characters":       {in: strings.Repeat("\x00", 300), wantPrefix: strings.Repeat("\x00", StringPrefixBytes)},
		"looks like a marker":      {in: "x...[truncated 9 bytes sha256:00]", unchanged: true},
		"line separators (U+2028)": {in: strings.Repeat("\u2028", 100), wantPrefix: strings.Repeat("\u2028", StringPrefixBytes/3)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := boundString(c.in)
			if len(got) > MaxStringBytes || !utf8.ValidString(got) {
				t.Fatalf("%d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
			}
			if c.unchanged {
				if got != c.in {
					t.Fatalf("changed to %q", got)
				}
				return
			}
			want := fmt.Sprintf("%s...[truncated %d bytes sha256:%s]", c.wantPrefix, len(c.in), sha(c.in))
			if got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

type named string

type nested struct {
	Name  string   `json:"name"`
	Items []string `json:"items"`
}

func deep(n int) any {
	var v any = "bottom"
	for range n {
		v = map[string]any{"x": []any{v}}
	}
	return v
}

func TestBoundPayload(t *testing.T) {
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("action_%d", i)
	}
	wide := map[string]any{}
	for i := range 10000 {
		wide[fmt.Sprintf("k%05d", i)] = i
	}
	small := map[string]any{}
	for i := range 200 {
		small[fmt.Sprint(i)] = i
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	cases := map[string]struct {
		payload map[string]any
		check   func(t *testing.T, p map[string]any)
	}{
		"thousands of actions": {map[string]any{"actions": many, "reason": "ok"}, func(t *testing.T, p map[string]any) {
			l := p["actions"].([]any)
			if len(l) != MaxItems || l[0] != "action_0" || l[MaxItems-2] != fmt.Sprintf("action_%d", MaxItems-2) {
				t.Fatalf("kept %d: %v", len(l), l[:3])
			}
			b, _ := encodeJSON(many)
			if want := "...[5000 items in all sha256:" + sha(string(b)) + "]"; l[MaxItems-1] != want {
				t.Fatalf("marker %q, want %q", l[MaxItems-1], want)
			}
			if p["reason"] != "ok" {
				t.Fatalf("reason lost: %v", p["reason"])
			}
		}},
		"ten thousand keys": {map[string]any{"ctx": wide}, func(t *testing.T, p map[string]any) {
			m := p["ctx"].(map[string]any)
			if len(m) != MaxItems || m["k00000"] != json.Number("0") && m["k00000"] != 0 || !strings.HasPrefix(m["..."].(string), "...[10000 items in all sha256:") {
				t.Fatalf("kept %d: %v", len(m), m["..."])
			}
		}},
		"deep nesting": {map[string]any{"d": deep(50)}, func(t *testing.T, p map[string]any) {
			b, _ := json.Marshal(p)
			if !strings.Contains(string(b), "...[nested ") {
				t.Fatalf("no nesting marker: %s", b)
			}
		}},
		"huge key": {map[string]any{strings.Repeat("k", 5000): "v"}, func(t *testing.T, p map[string]any) {
			if _, ok := p[boundString(strings.Repeat("k", 5000))]; !ok || len(p) != 1 {
				t.Fatalf("keys %v", p)
			}
		}},
		"unencodable values": {map[string]any{"nan": math.NaN(), "inf": math.Inf(-1), "ch": make(chan int), "fn": func() {}, "cycle": cyclic}, func(t *testing.T, p map[string]any) {
			if p["nan"] != "NaN" || p["inf"] != "-Inf" || p["ch"] != "...[unencodable chan int]" || p["fn"] != "...[unencodable func()]" {
				t.Fatalf("%v", p)
			}
		}},
		"other Go types": {map[string]any{"named": named(strings.Repeat("n", 400)), "struct": nested{Name: "a", Items: many}, "ints": []int{1, 2, 3}, "big": json.Number(strings.Repeat("9", 400)), "bad number": json.Number("1x"), "spaced number": json.Number(" 1"), "not a number": json.Number("true"), "huge exponent": json.Number("1e400"), "time": time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), "strs": map[string]string{"a": strings.Repeat("z", 300)}}, func(t *testing.T, p map[string]any) {
			if p["named"] != boundString(strings.Repeat("n", 400)) || p["time"] != "2026-04-01T12:00:00Z" {
				t.Fatalf("%v", p)
			}
			if s := p["struct"].(map[string]any); s["name"] != "a" || len(s["items"].([]any)) != MaxItems {
				t.Fatalf("struct %v", s)
			}
			if p["big"] != boundString(strings.Repeat("9", 400)) || p["bad number"] != "1x" || p["spaced number"] != " 1" || p["not a number"] != "true" || p["huge exponent"] != "1e400" {
				t.Fatalf("numbers %v %v", p["big"], p["bad number"])
			}
		}},
		"an early giant does not crowd out later keys": {map[string]any{"a": []any{small, small, small, small, small, small}, "b": many, "z": "last"}, func(t *testing.T, p map[string]any) {
			if p["z"] != "last" {
				t.Fatalf("z = %v", p["z"])
			}
		}},
		"a wide list of wide objects": {map[string]any{"l": func() []any {
			l := make([]any, 100)
			for i := range l {
				l[i] = small
			}
			return l
		}()}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ev := Event{EventType: PacketRejected, Payload: c.payload}
			_, decoded := roundTrip(t, ev)
			got := Bound(ev).Payload
			checkBounded(t, decoded["payload"])
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

func TestBoundDoesNotModifyTheEvent(t *testing.T) {
	long := strings.Repeat("x", 1000)
	list := []string{long}
	ev := Event{CorrelationID: long, Payload: map[string]any{"a": list, "b": long}}
	Bound(ev)
	if ev.CorrelationID != long || list[0] != long || ev.Payload["b"] != long || len(ev.Payload) != 2 {
		t.Fatal("Bound changed its input")
	}
}

func TestBoundHeaderFields(t *testing.T) {
	huge := strings.Repeat("<", 900_000)
	ev := Event{EventID: huge, EventType: huge, ProducerID: huge, CorrelationID: huge, IdempotencyKey: "packet_rejected:" + huge, Payload: map[string]any{"packet_id": huge}}
	_, decoded := roundTrip(t, ev)
	for _, f := range []string{"event_id", "event_type", "producer_id", "correlation_id"} {
		if decoded[f] != boundString(huge) {
			t.Errorf("%s = %.40q", f, decoded[f])
		}
	}
	// Bounded idempotency keys stay distinct for distinct inputs.
	other := Bound(Event{IdempotencyKey: "packet_rejected:" + huge + "x"})
	if other.IdempotencyKey == decoded["idempotency_key"] {
		t.Fatal("two idempotency keys collide")
	}
}

// The worst case of every bound at once still fits one line the reader accepts.
func TestWorstCaseLineFits(t *testing.T) {
	// Each byte below escapes to six in JSON.
	s := strings.Repeat("\x01", MaxStringBytes)
	payload := map[string]any{}
	for i := range 2 * MaxValues {
		payload[fmt.Sprintf("%03d", i)+s[3:]] = map[string]any{s: s, s[1:]: []any{s, s, s}}
	}
	ev := Event{EventID: s, EventType: s, ProducerID: s, CorrelationID: s, IdempotencyKey: s, Payload: payload, Timestamp: time.Now()}
	line, _ := roundTrip(t, ev)
	t.Logf("worst-case line: %d bytes", len(line))
	rec := appendRecord(nil, line[:len(line)-1], math.MaxUint64, strings.Repeat("f", 64))
	if len(rec)+1 > MaxLineBytes {
		t.Fatalf("record of %d bytes", len(rec))
	}
	log := append(appendRecord(nil, line[:len(line)-1], 1, ""), '\n')
	if n, _, err := Verify(bytes.NewReader(log)); err != nil || n != 1 {
		t.Fatalf("%d, %v", n, err)
	}
}

// The spliced record is byte-identical to encoding the Record struct.
func TestAppendRecordMatchesRecord(t *testing.T) {
	ev := Bound(Event{EventID: "e", EventType: PacketAccepted, Timestamp: time.Unix(5, 0).UTC(), Payload: map[string]any{"a": []any{"<b>&"}}})
	for _, c := range []struct {
		seq  uint64
		prev string
	}{{1, ""}, {2, strings.Repeat("a", 64)}, {math.MaxUint64, "00"}} {
		want, _ := encodeJSON(Record{Event: ev, Seq: c.seq, PrevHash: c.prev})
		body, _ := encodeJSON(ev)
		if got := appendRecord(nil, body, c.seq, c.prev); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	// A nil payload too.
	want, _ := encodeJSON(Record{Event: Event{}, Seq: 1})
	body, _ := encodeJSON(Bound(Event{}))
	if got := appendRecord(nil, body, 1, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
