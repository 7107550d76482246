package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The log's JSON is Go's encoding/json, compact, without HTML escaping (see encodeJSON):
// those bytes are hashed into the chain and read by other implementations, so they must
// never change. appendEvent and appendValue write the same bytes by hand, without
// reflection, for the shapes a bounded event holds; for anything else (and for what
// encoding/json refuses) they report false and the caller falls back to encodeJSON.
// FuzzEncodeMatchesEncodingJSON checks the two against each other.

// maxEncodeDepth bounds the hand encoder's recursion; deeper values (only unbounded ones,
// summed up by a marker) go to encoding/json, which also detects cycles.
const maxEncodeDepth = 64

// encodeEvent returns ev's JSON object as encodeJSON(ev) does.
func encodeEvent(ev Event) ([]byte, error) {
	if b, ok := appendEvent(nil, ev); ok {
		return b, nil
	}
	return encodeJSON(ev)
}

// encodeAny returns v's JSON as encodeJSON(v) does.
func encodeAny(v any) ([]byte, error) {
	if b, ok := appendValue(nil, v, 0); ok {
		return b, nil
	}
	return encodeJSON(v)
}

// appendEvent appends ev's JSON object (the fields of Event in order), or reports false
// when ev holds something it does not encode (dst is then garbage).
func appendEvent(dst []byte, ev Event) ([]byte, bool) {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, ev.EventID)
	dst = append(dst, `,"event_type":`...)
	dst = appendString(dst, ev.EventType)
	dst = append(dst, `,"timestamp":"`...)
	var err error
	if dst, err = ev.Timestamp.AppendText(dst); err != nil {
		return dst, false
	}
	dst = append(dst, `","producer_id":`...)
	dst = appendString(dst, ev.ProducerID)
	dst = append(dst, `,"correlation_id":`...)
	dst = appendString(dst, ev.CorrelationID)
	dst = append(dst, `,"idempotency_key":`...)
	dst = appendString(dst, ev.IdempotencyKey)
	dst = append(dst, `,"payload":`...)
	var ok bool
	if dst, ok = appendMap(dst, ev.Payload, 0); !ok {
		return dst, false
	}
	return append(dst, '}'), true
}

// appendValue appends v's JSON, or reports false.
func appendValue(dst []byte, v any, depth int) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, x), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case float64:
		return appendFloat(dst, x)
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // as encoding/json writes it
		}
		if !isValidNumber(s) {
			return dst, false
		}
		return append(dst, s...), true
	case []any:
		if x == nil {
			return append(dst, "null"...), true
		}
		if depth >= maxEncodeDepth {
			return dst, false
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValue(dst, e, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case []string:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, e)
		}
		return append(dst, ']'), true
	case map[string]any:
		return appendMap(dst, x, depth)
	case map[string]string:
		if x == nil {
			return append(dst, "null"...), true
		}
		keys := sortedKeys(x)
		dst = append(dst, '{')
		for i, k := range *keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, x[k])
		}
		putKeys(keys)
		return append(dst, '}'), true
	}
	return dst, false
}

// appendMap appends m's JSON object, keys sorted by their bytes as encoding/json sorts them.
func appendMap(dst []byte, m map[string]any, depth int) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	if depth >= maxEncodeDepth {
		return dst, false
	}
	keys := sortedKeys(m)
	defer putKeys(keys)
	dst = append(dst, '{')
	for i, k := range *keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var ok bool
		if dst, ok = appendValue(dst, m[k], depth+1); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

var keysPool = sync.Pool{New: func() any { return new([]string) }}

func sortedKeys[V any](m map[string]V) *[]string {
	p := keysPool.Get().(*[]string)
	keys := (*p)[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // byte order, as encoding/json sorts (strings.Compare)
	*p = keys
	return p
}

func putKeys(p *[]string) {
	if cap(*p) > 1024 {
		return
	}
	clear((*p)[:cap(*p)])
	*p = (*p)[:0]
	keysPool.Put(p)
}

// appendFloat writes f as encoding/json writes a float64: like ES6, shortest
// representation, exponent form below 1e-6 and from 1e21 on. It refuses NaN and ±Inf, as
// encoding/json does.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does without HTML escaping:
// '"', '\\' and control characters escaped (\b \f \n \r \t short), U+2028 and U+2029
// escaped, each byte of invalid UTF-8 replaced by \ufffd, everything else (DEL included)
// as is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isValidNumber reports whether s is a JSON number literal (encoding/json's check).
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	default:
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}
