package packet

import (
	"bytes"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

// The packet's wire bytes are kept so that writing a received envelope again (to attach
// approvals or capabilities, or to re-verify it) never re-encodes the signed packet: under
// rule 0.3.3 the signature covers nested keys in wire order, and a sender's spelling of the
// same values may differ from ours.

// The text is located and checked only when the packet is written again (verification
// never needs it), so keeping it costs the verification path nothing: no copy, no scan.

// wireText returns the packet's JSON text as received, when it still describes p: it
// decodes to a packet with the same signature and the same rule 0.3.3 bytes (which keep
// every value, its type and the order of nested keys). A caller that changed a field after
// decoding, or the buffer it was decoded from, gets the packet re-encoded, never stale bytes.
func (p *Packet) wireText() ([]byte, bool) {
	text := p.wire
	if text == nil {
		return nil, false
	}
	if p.wireIn {
		start, end, ok := memberSpan(text, "packet")
		if !ok {
			return nil, false
		}
		text = text[start:end]
	} else {
		text = trimSpace(text)
	}
	text = bytes.Clone(text) // the caller may change its buffer after this check
	if !p.wireHolds(text) {
		return nil, false
	}
	return text, true
}

// wireHolds reports whether text decodes to a packet that is p, as wireText says.
func (p *Packet) wireHolds(text []byte) bool {
	// The text was accepted once under the caller's limits; nesting cannot exceed its length.
	v, err := canonical.Parse(text, Limits{MaxBytes: len(text), MaxDepth: max(canonical.DefaultMaxDepth, len(text))})
	if err != nil {
		return false
	}
	q, err := FromValue(&v)
	if err != nil || q.Signature != p.Signature {
		return false
	}
	a, err1 := q.SigningBytes(nil, Rule033)
	b, err2 := p.SigningBytes(nil, Rule033)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// memberSpan returns the byte range of the value of member key in data, which must be a
// JSON object that canonical.Parse accepted (so keys are unique). It is a plain scan, not a
// parser: on anything unexpected it reports false and never panics.
func memberSpan(data []byte, key string) (start, end int, ok bool) {
	s := scanner{data: data}
	s.space()
	if !s.byte('{') {
		return 0, 0, false
	}
	for {
		s.space()
		ks := s.pos
		if !s.str() {
			return 0, 0, false
		}
		match, ok := keyIs(data[ks:s.pos], key)
		if !ok {
			return 0, 0, false
		}
		s.space()
		if !s.byte(':') {
			return 0, 0, false
		}
		s.space()
		vs := s.pos
		if !s.value() {
			return 0, 0, false
		}
		if match {
			return vs, s.pos, true
		}
		s.space()
		if !s.byte(',') {
			return 0, 0, false // '}' (key not found) or garbage
		}
	}
}

// keyIs reports whether the JSON string token tok (quotes included) spells key, and
// whether tok is a string token at all.
func keyIs(tok []byte, key string) (match, ok bool) {
	if len(tok) < 2 {
		return false, false
	}
	if bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1:len(tok)-1]) == key, true
	}
	v, err := canonical.Parse(tok, canonical.Limits{MaxBytes: len(tok)})
	if err != nil || v.Kind != canonical.String {
		return false, false
	}
	return v.Str == key, true
}

// trimSpace drops JSON whitespace around a JSON text.
func trimSpace(data []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(data) > 0 && isSpace(data[0]) {
		data = data[1:]
	}
	for len(data) > 0 && isSpace(data[len(data)-1]) {
		data = data[:len(data)-1]
	}
	return data
}

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// str skips one string token.
func (s *scanner) str() bool {
	if !s.byte('"') {
		return false
	}
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '"':
			s.pos++
			return true
		case '\\':
			s.pos += 2
		default:
			s.pos++
		}
	}
	return false
}

// value skips one value: nested containers by bracket depth, strings by their quotes,
// literals and numbers up to the next delimiter.
func (s *scanner) value() bool {
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case '"':
				if !s.str() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				return true
			}
		}
		return false
	default:
		start := s.pos
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.pos > start
			}
			s.pos++
		}
		return s.pos > start
	}
}
