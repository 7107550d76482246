package canonical

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the JSON type of a [Value].
type Kind uint8

// The JSON kinds. Integers and floats are distinct kinds because Python keeps them distinct:
// "1" is the int 1 and "1.0" is the float 1.0, and they serialize differently.
const (
	Null Kind = iota
	Bool
	Int
	Float
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Int:
		return "integer"
	case Float:
		return "float"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "unknown"
}

// Value is a parsed JSON value. Object members keep their wire order; integers keep their
// exact decimal digits in Str (normalised: no "-0").
type Value struct {
	Kind  Kind
	Bool  bool
	Str   string  // String value, or the decimal digits of an Int
	Float float64 // Float value
	Arr   []Value
	Obj   []Member
}

// Member is one object member.
type Member struct {
	Key   string
	Value Value
}

// Get returns the member named key of an object value.
func (v *Value) Get(key string) (*Value, bool) {
	for i := range v.Obj {
		if v.Obj[i].Key == key {
			return &v.Obj[i].Value, true
		}
	}
	return nil, false
}

// Int64 returns the value of an Int that fits in an int64.
func (v *Value) Int64() (int64, bool) {
	if v.Kind != Int {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Str, 10, 64)
	return n, err == nil
}

// Limits bound what Parse accepts.
type Limits struct {
	MaxBytes int // 0 means DefaultMaxBytes
	MaxDepth int // 0 means DefaultMaxDepth
}

// Default limits.
const (
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 64
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("invalid JSON")

// SyntaxError locates a parse failure.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Unwrap lets callers test errors.Is(err, ErrSyntax).
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// Parse parses one JSON text strictly (RFC 8259 plus the rules in the package comment).
func Parse(data []byte, lim Limits) (Value, error) {
	maxBytes, maxDepth := lim.MaxBytes, lim.MaxDepth
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if len(data) > maxBytes {
		return Value{}, &SyntaxError{Offset: maxBytes, Msg: fmt.Sprintf("input is %d bytes, over the %d-byte limit", len(data), maxBytes)}
	}
	p := parserPool.Get().(*parser)
	defer func() {
		clear(p.members[:cap(p.members)]) // drop references to the input's strings
		clear(p.values[:cap(p.values)])
		p.data, p.src = nil, ""
		parserPool.Put(p)
	}()
	p.data, p.src, p.pos, p.maxDepth = data, string(data), 0, maxDepth
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return Value{}, p.errorf("unexpected data after the JSON value")
	}
	return v, nil
}

var parserPool = sync.Pool{New: func() any { return new(parser) }}

type parser struct {
	data     []byte
	src      string // one immutable copy of data; strings without escapes are substrings of it
	pos      int
	maxDepth int
	// Scratch stacks: members and elements are collected here and copied into one
	// exact-size slice per container, so a container costs one allocation, not a
	// doubling series.
	members []Member
	values  []Value
}

// dupIndexAt is the member count from which duplicate keys are found with a map instead of
// a linear scan, so a hostile object with many keys costs O(n), not O(n²).
const dupIndexAt = 32

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		return Value{Kind: String, Str: s}, err
	case c == 't':
		return Value{Kind: Bool, Bool: true}, p.literal("true")
	case c == 'f':
		return Value{Kind: Bool}, p.literal("false")
	case c == 'n':
		return Value{}, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return Value{}, p.errorf("unexpected character %q", c)
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal (NaN, Infinity and other non-JSON tokens are rejected)")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) object(depth int) (Value, error) {
	if depth > p.maxDepth {
		return Value{}, p.errorf("nesting deeper than %d", p.maxDepth)
	}
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{Kind: Object, Obj: []Member{}}, nil
	}
	base := len(p.members)
	defer func() { p.members = p.members[:base] }()
	var index map[string]struct{}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.errorf("expected a string object key")
		}
		keyAt := p.pos
		key, err := p.string()
		if err != nil {
			return Value{}, err
		}
		dup := false
		if n := len(p.members) - base; n < dupIndexAt {
			for i := base; i < len(p.members); i++ {
				if p.members[i].Key == key {
					dup = true
					break
				}
			}
		} else {
			if index == nil {
				index = make(map[string]struct{}, 2*n)
				for i := base; i < len(p.members); i++ {
					index[p.members[i].Key] = struct{}{}
				}
			}
			_, dup = index[key]
			index[key] = struct{}{}
		}
		if dup {
			return Value{}, &SyntaxError{Offset: keyAt, Msg: fmt.Sprintf("duplicate object key %q", key)}
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.errorf("expected ':' after object key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.members = append(p.members, Member{Key: key, Value: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return Value{Kind: Object, Obj: slices.Clone(p.members[base:])}, nil
		default:
			return Value{}, p.errorf("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	if depth > p.maxDepth {
		return Value{}, p.errorf("nesting deeper than %d", p.maxDepth)
	}
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{Kind: Array, Arr: []Value{}}, nil
	}
	base := len(p.values)
	defer func() { p.values = p.values[:base] }()
	for {
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.values = append(p.values, val)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errorf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return Value{Kind: Array, Arr: slices.Clone(p.values[base:])}, nil
		default:
			return Value{}, p.errorf("expected ',' or ']' in array")
		}
	}
}

// string parses a JSON string at p.pos. Invalid UTF-8, raw control characters and escapes
// that decode to lone surrogates are errors.
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, all ASCII printable.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.src[start:p.pos] // a substring of the one copy of the input: no allocation
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
		p.pos++
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("raw control character 0x%02x in string", c)
		case c < 0x80 && c != '\\':
			buf = append(buf, c)
			p.pos++
		case c >= 0x80:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errorf("invalid UTF-8 in string")
			}
			buf = append(buf, p.data[p.pos:p.pos+size]...)
			p.pos += size
		default: // backslash
			if p.pos+1 >= len(p.data) {
				return "", p.errorf("unterminated escape")
			}
			e := p.data[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 || p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
						return "", p.errorf("lone surrogate \\u%04x", r)
					}
					p.pos += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					dec := utf16.DecodeRune(r, r2)
					if dec == utf8.RuneError {
						return "", p.errorf("lone surrogate \\u%04x", r)
					}
					r = dec
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", p.errorf("invalid escape \\%c", e)
			}
		}
	}
}

func (p *parser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.errorf("short \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("invalid hex digit in \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

func (p *parser) number() (Value, error) {
	start := p.pos
	isFloat := false
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(p.data) {
		return Value{}, p.errorf("truncated number")
	}
	switch c := p.data[p.pos]; {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return Value{}, p.errorf("invalid number (NaN and Infinity are rejected)")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		isFloat = true
		p.pos++
		if p.digits() == 0 {
			return Value{}, p.errorf("digit expected after decimal point")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		isFloat = true
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return Value{}, p.errorf("digit expected in exponent")
		}
	}
	lit := p.src[start:p.pos]
	if !isFloat {
		if lit == "-0" {
			lit = "0"
		}
		return Value{Kind: Int, Str: lit}, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return Value{}, &SyntaxError{Offset: start, Msg: fmt.Sprintf("number %s is out of float64 range", lit)}
	}
	return Value{Kind: Float, Float: f}, nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}
