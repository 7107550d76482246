package canonical

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FloatStyle selects how floats are spelled.
type FloatStyle uint8

const (
	// PythonRepr spells floats as CPython's repr/json.dumps does: "1e-05", "1e+16", "1.0".
	PythonRepr FloatStyle = iota
	// Pydantic spells floats as pydantic-core's JSON serializer does: "0.00001", "1e-7", "1e+16".
	Pydantic
	// NoFloats makes floats an error (the attestation outcome hash forbids them).
	NoFloats
)

// Style describes one JSON dialect.
type Style struct {
	SortKeys bool       // sort object keys by code point at every level
	Spaced   bool       // separators ", " and ": " (json.dumps defaults) instead of "," and ":"
	ASCII    bool       // escape everything outside 0x20–0x7E as \uXXXX (ensure_ascii=True)
	Floats   FloatStyle // float spelling
}

// The dialects TrustHandoff signs, hashes or puts on the wire. They are functions, not
// variables, so no importer can change the bytes every other package signs or verifies.

// PacketV04 is the packet signing rule of reference ≥ 0.3.4.
func PacketV04() Style { return Style{SortKeys: true, ASCII: true, Floats: PythonRepr} }

// PacketV033 is pydantic's model_dump_json, for the dict-typed parts (context, ai_provenance):
// wire order, raw UTF-8, pydantic float spelling.
func PacketV033() Style { return Style{Floats: Pydantic} }

// Wire is what the reference's envelope_to_json emits.
func Wire() Style { return Style{SortKeys: true, Spaced: true, ASCII: true, Floats: PythonRepr} }

// CompactSorted is json.dumps(sort_keys=True, separators=(",", ":")) (capability tokens).
func CompactSorted() Style { return Style{SortKeys: true, ASCII: true, Floats: PythonRepr} }

// OutcomeHash is the attestation outcome/reason hash input: compact, sorted, raw UTF-8, no floats.
func OutcomeHash() Style { return Style{SortKeys: true, Floats: NoFloats} }

// ErrFloat is returned when a float is encoded under NoFloats.
var ErrFloat = errors.New("floats are not allowed in this canonical form")

// Append appends the encoding of v in style s to dst.
func Append(dst []byte, v *Value, s Style) ([]byte, error) {
	switch v.Kind {
	case Null:
		return append(dst, "null"...), nil
	case Bool:
		if v.Bool {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case Int:
		return append(dst, v.Str...), nil
	case Float:
		return AppendFloat(dst, v.Float, s.Floats)
	case String:
		return AppendString(dst, v.Str, s.ASCII), nil
	case Array:
		dst = append(dst, '[')
		for i := range v.Arr {
			if i > 0 {
				dst = s.Comma(dst)
			}
			var err error
			if dst, err = Append(dst, &v.Arr[i], s); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case Object:
		members := v.Obj
		if s.SortKeys && !slices.IsSortedFunc(members, cmpMember) {
			members = slices.Clone(members)
			slices.SortFunc(members, cmpMember)
		}
		dst = append(dst, '{')
		for i := range members {
			if i > 0 {
				dst = s.Comma(dst)
			}
			dst = s.Key(dst, members[i].Key)
			var err error
			if dst, err = Append(dst, &members[i].Value, s); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, errors.New("canonical: invalid value kind")
}

// Marshal returns the encoding of v in style s.
func Marshal(v *Value, s Style) ([]byte, error) { return Append(nil, v, s) }

func cmpMember(a, b Member) int { return strings.Compare(a.Key, b.Key) }

// Comma appends the member separator of style s.
func (s Style) Comma(dst []byte) []byte {
	if s.Spaced {
		return append(dst, ", "...)
	}
	return append(dst, ',')
}

// Key appends an object key and its colon separator.
func (s Style) Key(dst []byte, key string) []byte {
	dst = AppendString(dst, key, s.ASCII)
	if s.Spaced {
		return append(dst, ": "...)
	}
	return append(dst, ':')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string the way CPython's json module does: `"` and `\`
// and \b \f \n \r \t get short escapes, other control characters \u00XX (lowercase hex); with
// ascii every character outside 0x20–0x7E is escaped too, astral ones as surrogate pairs.
// Without ascii the output equals serde_json's (pydantic) for valid UTF-8.
func AppendString(dst []byte, s string, ascii bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= 0x80 && !ascii {
			i++
			continue
		}
		if c == 0x7f && !ascii {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
			i++
		case '\\':
			dst = append(dst, '\\', '\\')
			i++
		case '\b':
			dst = append(dst, '\\', 'b')
			i++
		case '\f':
			dst = append(dst, '\\', 'f')
			i++
		case '\n':
			dst = append(dst, '\\', 'n')
			i++
		case '\r':
			dst = append(dst, '\\', 'r')
			i++
		case '\t':
			dst = append(dst, '\\', 't')
			i++
		default:
			if c < 0x80 {
				dst = appendU(dst, rune(c))
				i++
				break
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if r >= 0x10000 {
				r -= 0x10000
				dst = appendU(dst, 0xD800+(r>>10))
				dst = appendU(dst, 0xDC00+(r&0x3FF))
			} else {
				dst = appendU(dst, r)
			}
			i += size
		}
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// AppendFloat appends f in the given style. NaN and infinities are errors in every style:
// the strict parser never produces them and nothing TrustHandoff signs may contain them.
func AppendFloat(dst []byte, f float64, style FloatStyle) ([]byte, error) {
	if style == NoFloats {
		return nil, ErrFloat
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, errors.New("canonical: NaN and Infinity have no JSON form")
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...), nil
		}
		return append(dst, "0.0"...), nil
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits and decimal exponent: f = 0.d1d2... × 10^decpt.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(string(e), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp) // f = d.ddd × 10^x
	if style == PythonRepr {
		return appendRepr(dst, digits, x), nil
	}
	return appendRyu(dst, digits, x), nil
}

// appendRepr follows CPython's float_repr_style 'short': fixed notation when
// -4 <= x < 16, otherwise scientific with a sign and at least two exponent digits.
func appendRepr(dst []byte, digits string, x int) []byte {
	if x >= -4 && x < 16 {
		return appendFixed(dst, digits, x)
	}
	dst = appendMantissa(dst, digits)
	dst = append(dst, 'e')
	if x < 0 {
		dst = append(dst, '-')
		x = -x
	} else {
		dst = append(dst, '+')
	}
	if x < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(x), 10)
}

// appendRyu follows pydantic-core: fixed notation when -5 <= x < 16, otherwise scientific
// with no exponent padding and an explicit '+' for positive exponents.
func appendRyu(dst []byte, digits string, x int) []byte {
	if x >= -5 && x < 16 {
		return appendFixed(dst, digits, x)
	}
	dst = appendMantissa(dst, digits)
	dst = append(dst, 'e')
	if x >= 0 {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, int64(x), 10)
}

func appendMantissa(dst []byte, digits string) []byte {
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	return dst
}

// appendFixed writes digits × 10^(x-len(digits)+1) in positional notation with at least
// one digit after the point.
func appendFixed(dst []byte, digits string, x int) []byte {
	if x < 0 {
		dst = append(dst, '0', '.')
		for range -x - 1 {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	intLen := x + 1
	if len(digits) <= intLen {
		dst = append(dst, digits...)
		for range intLen - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	}
	dst = append(dst, digits[:intLen]...)
	dst = append(dst, '.')
	return append(dst, digits[intLen:]...)
}
