package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Bounds on what one event holds. Events carry values taken from untrusted input (packet
// ids, nonces, agent ids, action lists, error details), so every sink stores them bounded:
// whatever the payload, the record stays small enough for any reader of the log.
const (
	// MaxStringBytes is the longest string stored as is. A longer string, or one that is
	// not valid UTF-8, is stored as its first bytes (at most StringPrefixBytes, cut on a
	// rune boundary, invalid bytes replaced by U+FFFD) followed by
	// "...[truncated N bytes sha256:HEX]", where N is the original length in bytes and HEX
	// the lowercase hex sha256 of the original bytes, so the original can still be matched.
	// Every stored string, the marker included, is valid UTF-8 and at most MaxStringBytes.
	MaxStringBytes = 256
	// StringPrefixBytes is the most of a long string's beginning that is kept.
	StringPrefixBytes = 128
	// MaxItems is the most elements kept of one list, or entries of one object (the
	// payload included), the marker of the elided rest counted. An object keeps its
	// entries in key order. The elided rest is summed up by a final string element (for a
	// list) or the entry "..." (for an object) reading "...[N items in all sha256:HEX]",
	// HEX being the sha256 of the whole container's JSON encoding as the log writes JSON
	// (Go's encoding/json, compact, object keys sorted, no HTML escaping).
	MaxItems = 64
	// MaxDepth bounds nesting: a list or object at depth MaxDepth or more (the payload's
	// own entries are at depth 1) is stored as the string "...[nested list sha256:HEX]"
	// (or "nested object"), HEX as for MaxItems.
	MaxDepth = 8
	// MaxValues is the most values (strings, numbers, lists, objects, markers) kept in
	// one payload in all. Each entry of a container is kept at least as a marker before a
	// later one is elided, so an early huge entry cannot crowd out the rest.
	MaxValues = 256
	// MaxLineBytes is the longest line the file log writes: a bounded event, whatever it
	// held, always encodes to fewer bytes.
	MaxLineBytes = 1 << 20
)

// Bound returns a copy of ev with every string, list and object reduced to the bounds
// above (MaxStringBytes, MaxItems, MaxDepth, MaxValues). Values that JSON cannot encode
// (NaN, channels, cycles) become strings describing them, so encoding a bounded event
// fails only for a timestamp outside years 0-9999. Every sink of this package stores
// events bounded; Bound is for sinks written elsewhere.
func Bound(ev Event) Event {
	out := ev
	out.EventID = boundString(ev.EventID)
	out.EventType = boundString(ev.EventType)
	out.ProducerID = boundString(ev.ProducerID)
	out.CorrelationID = boundString(ev.CorrelationID)
	out.IdempotencyKey = boundString(ev.IdempotencyKey)
	if ev.Payload != nil {
		v, _ := boundValue(ev.Payload, 0, MaxValues)
		out.Payload, _ = v.(map[string]any)
	}
	return out
}

// boundEvent is Bound for the sinks of this package, which do not retain the event: an
// event already within the bounds (the usual case) is returned as it is, payload shared,
// without a copy or an allocation.
func boundEvent(ev Event) Event {
	if stringFits(ev.EventID) && stringFits(ev.EventType) && stringFits(ev.ProducerID) &&
		stringFits(ev.CorrelationID) && stringFits(ev.IdempotencyKey) {
		if ev.Payload == nil {
			return ev
		}
		if n, ok := fits(ev.Payload, 0); ok && n <= MaxValues {
			return ev
		}
	}
	return Bound(ev)
}

func stringFits(s string) bool { return len(s) <= MaxStringBytes && utf8.ValidString(s) }

// fits reports whether boundValue(v, depth, budget) would return v as it is (or a value
// of the same JSON encoding) for any budget of at least n, the number of values v holds.
// Within the other bounds a value is kept whole exactly when the budget covers all of its
// values: each entry gets the budget left after those before it, minus one for each after.
func fits(v any, depth int) (n int, ok bool) {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return 1, true
	case string:
		return 1, stringFits(x)
	case float64:
		return 1, !math.IsNaN(x) && !math.IsInf(x, 0)
	case []string:
		if x == nil || depth >= MaxDepth || len(x) > MaxItems {
			return 0, false // bounded, a nil list becomes []
		}
		for _, s := range x {
			if !stringFits(s) {
				return 0, false
			}
		}
		return 1 + len(x), true
	case []any:
		if x == nil || depth >= MaxDepth || len(x) > MaxItems {
			return 0, false
		}
		n = 1
		for _, e := range x {
			m, ok := fits(e, depth+1)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, n <= MaxValues
	case map[string]any:
		if x == nil || depth >= MaxDepth || len(x) > MaxItems {
			return 0, false // bounded, a nil object becomes {}
		}
		n = 1
		for k, e := range x {
			m, ok := fits(e, depth+1)
			if !ok || !stringFits(k) {
				return 0, false
			}
			n += m
		}
		return n, n <= MaxValues
	case map[string]string:
		if x == nil || depth >= MaxDepth || len(x) > MaxItems {
			return 0, false
		}
		for k, s := range x {
			if !stringFits(k) || !stringFits(s) {
				return 0, false
			}
		}
		return 1 + len(x), true
	}
	// json.Number, float32, time.Time and other types are stored converted.
	return 0, false
}

// boundString returns s, or its bounded form when s is too long or not valid UTF-8.
func boundString(s string) string {
	if len(s) <= MaxStringBytes && utf8.ValidString(s) {
		return s
	}
	prefix := make([]byte, 0, StringPrefixBytes)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if len(prefix)+utf8.RuneLen(r) > StringPrefixBytes {
			break
		}
		prefix = utf8.AppendRune(prefix, r) // an invalid byte decodes as U+FFFD
		i += size
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%s...[truncated %d bytes sha256:%s]", prefix, len(s), hex.EncodeToString(sum[:]))
}

// marker sums up an elided value v by its JSON encoding's sha256.
func marker(what string, v any) string {
	b, err := encodeAny(v)
	if err != nil {
		return "...[" + what + " (unencodable)]"
	}
	sum := sha256.Sum256(b)
	return "...[" + what + " sha256:" + hex.EncodeToString(sum[:]) + "]"
}

// boundValue returns v bounded, as JSON-shaped values (string, bool, nil, float64, int64,
// uint64, json.Number, []any, map[string]any), and how many values of budget (>= 1) it
// used (>= 1). depth is v's nesting under the payload, which is at depth 0.
func boundValue(v any, depth, budget int) (any, int) {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x, 1
	case string:
		return boundString(x), 1
	case json.Number:
		// A number too long, not a JSON number, or outside float64's range (which many
		// readers refuse) is stored as a string.
		if len(x) > MaxStringBytes || !json.Valid([]byte(x)) {
			return boundString(string(x)), 1
		}
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return string(x), 1
		}
		return x, 1
	case float64:
		return boundFloat(x), 1
	case float32:
		return boundFloat(float64(x)), 1
	case time.Time:
		if b, err := x.MarshalJSON(); err == nil {
			return string(b[1 : len(b)-1]), 1
		}
		return "...[unencodable time]", 1
	case []any:
		return boundList(len(x), func(i int) any { return x[i] }, v, depth, budget)
	case []string:
		return boundList(len(x), func(i int) any { return x[i] }, v, depth, budget)
	case map[string]any:
		return boundObject(x, v, depth, budget)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return boundObject(m, v, depth, budget)
	}
	// Anything else is bounded as what encoding/json would write for it.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("...[unencodable %T]", v), 1
	}
	var generic any
	if err := decodeNumbers(b, &generic); err != nil {
		return fmt.Sprintf("...[unencodable %T]", v), 1
	}
	return boundValue(generic, depth, budget)
}

// encodeJSON encodes v as the log writes JSON: compact, without the HTML escaping of
// "<", ">" and "&" that would make each of them six bytes.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeNumbers decodes JSON keeping numbers as written.
func decodeNumbers(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func boundFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// boundList keeps as many of a list's n elements as MaxItems and the budget allow.
func boundList(n int, at func(int) any, whole any, depth, budget int) (any, int) {
	if depth >= MaxDepth {
		return marker("nested list", whole), 1
	}
	if n > 0 && budget < 2 {
		return marker(strconv.Itoa(n)+" items in all", whole), 1
	}
	kept, elide := keep(n, budget)
	out := make([]any, 0, kept+1)
	used := 1
	for i := range kept {
		// Leave one value for each later element kept, and for the marker.
		reserve := kept - i - 1
		if elide {
			reserve++
		}
		v, u := boundValue(at(i), depth+1, budget-used-reserve)
		out = append(out, v)
		used += u
	}
	if elide {
		out = append(out, marker(strconv.Itoa(n)+" items in all", whole))
		used++
	}
	return out, used
}

// boundObject keeps, in key order, as many entries as MaxItems and the budget allow.
// Keys are bounded like strings.
func boundObject(m map[string]any, whole any, depth, budget int) (any, int) {
	if depth >= MaxDepth {
		return marker("nested object", whole), 1
	}
	if len(m) > 0 && budget < 2 {
		return marker(strconv.Itoa(len(m))+" items in all", whole), 1
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kept, elide := keep(len(keys), budget)
	out := make(map[string]any, kept+1)
	used := 1
	for i, k := range keys[:kept] {
		reserve := kept - i - 1
		if elide {
			reserve++
		}
		v, u := boundValue(m[k], depth+1, budget-used-reserve)
		out[boundString(k)] = v
		used += u
	}
	if elide {
		out["..."] = marker(strconv.Itoa(len(keys))+" items in all", whole)
		used++
	}
	return out, used
}

// keep decides how many of n children a container with budget (>= 2) values keeps, and
// whether a marker must stand for the rest. The container itself costs one value.
func keep(n, budget int) (kept int, elide bool) {
	room := min(MaxItems, budget-1)
	if n <= room {
		return n, false
	}
	return max(room-1, 0), true
}
