package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/trusthandoff/trusthandoff-go/packet"
)

// MaxSize is the largest policy document Parse and Load read.
const MaxSize = 1 << 20

// maxNesting bounds the nesting of the parsed tree; the format itself nests three deep.
const maxNesting = 16

// Error is a problem with a policy document: where it is and what is wrong.
type Error struct {
	File   string // the file, when read by Load
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Field  string // the field, as a path: "skew", "ttl.read", "actions[2].match"; "" for the document
	Msg    string
}

// Error formats the problem as FILE:LINE:COLUMN: FIELD: MESSAGE ("policy" for a
// document that was not read from a file).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("policy")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and parses the policy file at path. It reads only regular files (never
// blocking on a FIFO or a device) of at most MaxSize bytes; a problem in the document is
// an *Error naming the file.
func Load(path string) (*Policy, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("policy: %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("policy: %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: reading %s: %w", path, err)
	}
	p, err := Parse(data)
	var pe *Error
	if errors.As(err, &pe) {
		pe.File = path
	}
	return p, err
}

// Parse parses and validates one policy document, YAML or JSON. A document whose first
// character (after blanks and a byte order mark) is "{" or "[" is read as JSON
// (RFC 8259); any other as YAML. Either way exactly one document is read: unknown and
// duplicate keys, wrong types, values out of range, YAML anchors, aliases and tags,
// and anything after the document are errors (*Error).
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, &Error{Msg: fmt.Sprintf("the document is larger than %d bytes", MaxSize)}
	}
	if !utf8.Valid(data) {
		return nil, &Error{Msg: "the document is not valid UTF-8"}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var root *node
	var err error
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		root, err = parseJSON(data)
	} else {
		root, err = parseYAML(data)
	}
	if err != nil {
		return nil, err
	}
	return decode(root)
}

// kind is the type of a parsed value.
type kind int

const (
	kMap kind = iota
	kSeq
	kStr
	kInt
	kBool
	kNull
	kFloat
	kOther // a YAML scalar with another tag (timestamp, binary, a custom tag)
)

// node is a parsed value of either syntax, with where it starts.
type node struct {
	kind      kind
	text      string // scalars: the text; kOther: the tag
	line, col int
	keys      []*node // kMap: the keys (kStr), in order
	vals      []*node // kMap: the values
	items     []*node // kSeq
}

func (n *node) describe() string {
	switch n.kind {
	case kMap:
		return "a mapping"
	case kSeq:
		return "a list"
	case kStr:
		return "a string"
	case kInt:
		return "an integer"
	case kBool:
		return "a boolean"
	case kNull:
		return "null"
	case kFloat:
		return "a number with a fraction or exponent"
	}
	return "a value tagged " + n.text
}

func errAt(n *node, field, format string, args ...any) error {
	return &Error{Line: n.line, Column: n.col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func parseYAML(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "the document is empty (a policy starts with version: 1)"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(err)
	default:
		return nil, &Error{Line: extra.Line, Column: extra.Column, Msg: "a second YAML document: a policy file holds exactly one"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Msg: "the document is empty (a policy starts with version: 1)"}
	}
	return fromYAML(doc.Content[0], 0)
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// yamlError turns a YAML syntax error into an *Error, keeping its line.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Msg: "YAML: " + msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "YAML: " + msg[len(m[0]):]
	}
	return e
}

func fromYAML(y *yaml.Node, depth int) (*node, error) {
	n := &node{line: y.Line, col: y.Column}
	if depth > maxNesting {
		return nil, errAt(n, "", "nested too deeply")
	}
	if y.Anchor != "" {
		return nil, errAt(n, "", "YAML anchors (&%s) are not supported", y.Anchor)
	}
	tag := y.ShortTag()
	switch y.Kind {
	case yaml.AliasNode:
		return nil, errAt(n, "", "YAML aliases (*%s) are not supported", y.Value)
	case yaml.MappingNode:
		if tag != "!!map" {
			return nil, errAt(n, "", "YAML tag %s is not supported", tag)
		}
		n.kind = kMap
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" || k.Anchor != "" {
				return nil, errAt(&node{line: k.Line, col: k.Column}, "", "keys must be plain strings (this one is %s %q)", k.ShortTag(), k.Value)
			}
			v, err := fromYAML(y.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, &node{kind: kStr, text: k.Value, line: k.Line, col: k.Column})
			n.vals = append(n.vals, v)
		}
	case yaml.SequenceNode:
		if tag != "!!seq" {
			return nil, errAt(n, "", "YAML tag %s is not supported", tag)
		}
		n.kind = kSeq
		for _, c := range y.Content {
			v, err := fromYAML(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
	case yaml.ScalarNode:
		n.text = y.Value
		switch tag {
		case "!!str":
			n.kind = kStr
		case "!!int":
			n.kind = kInt
		case "!!bool":
			n.kind = kBool
			n.text = strings.ToLower(y.Value)
		case "!!null":
			n.kind = kNull
		case "!!float":
			n.kind = kFloat
			if decimalInt.MatchString(y.Value) {
				n.kind = kInt // an integer too large for YAML's int: out of range, not a fraction
			}
		default:
			n.kind, n.text = kOther, tag
		}
	default:
		return nil, errAt(n, "", "unexpected YAML node")
	}
	return n, nil
}

// jsonReader builds a node tree from JSON tokens, remembering where each value starts.
type jsonReader struct {
	data  []byte
	dec   *json.Decoder
	lines []int // offsets at which lines start
}

func parseJSON(data []byte) (*node, error) {
	r := &jsonReader{data: data, dec: json.NewDecoder(bytes.NewReader(data)), lines: []int{0}}
	r.dec.UseNumber()
	for i, c := range data {
		if c == '\n' {
			r.lines = append(r.lines, i+1)
		}
	}
	root, err := r.value(0)
	if err != nil {
		return nil, err
	}
	n := r.here()
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errAt(n, "", "JSON: data after the document: a policy file holds exactly one")
	}
	return root, nil
}

// here is where the next token starts.
func (r *jsonReader) here() *node {
	off := int(r.dec.InputOffset())
	for off < len(r.data) && strings.IndexByte(" \t\r\n,:", r.data[off]) >= 0 {
		off++
	}
	return r.at(off)
}

func (r *jsonReader) at(off int) *node {
	i := sort.Search(len(r.lines), func(i int) bool { return r.lines[i] > off }) - 1
	return &node{line: i + 1, col: off - r.lines[i] + 1}
}

func (r *jsonReader) syntax(err error) error {
	// The token reader's offsets are approximate; a full parse pins the offending byte.
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(r.data, new(any)), &se) {
		return errAt(r.at(int(max(se.Offset-1, 0))), "", "JSON: %v (a document that starts with { is read as JSON)", se)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errAt(r.at(len(r.data)), "", "JSON: unexpected end of the document")
	}
	return errAt(r.here(), "", "JSON: %v", err)
}

func (r *jsonReader) value(depth int) (*node, error) {
	n := r.here()
	if depth > maxNesting {
		return nil, errAt(n, "", "nested too deeply")
	}
	tok, err := r.dec.Token()
	if err != nil {
		return nil, r.syntax(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			n.kind = kMap
			for r.dec.More() {
				k := r.here()
				tok, err := r.dec.Token()
				if err != nil {
					return nil, r.syntax(err)
				}
				key, ok := tok.(string)
				if !ok {
					return nil, errAt(k, "", "JSON: object keys must be strings")
				}
				k.kind, k.text = kStr, key
				v, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.keys, n.vals = append(n.keys, k), append(n.vals, v)
			}
		} else {
			n.kind = kSeq
			for r.dec.More() {
				v, err := r.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		}
		if _, err := r.dec.Token(); err != nil { // the closing delimiter
			return nil, r.syntax(err)
		}
	case string:
		n.kind, n.text = kStr, t
	case json.Number:
		n.kind, n.text = kFloat, string(t)
		if decimalInt.MatchString(n.text) {
			n.kind = kInt
		}
	case bool:
		n.kind, n.text = kBool, strconv.FormatBool(t)
	case nil:
		n.kind = kNull
	}
	return n, nil
}

// decimalInt is the one integer spelling the format accepts (JSON's, without fraction or
// exponent): YAML's 0x1F, 0o17, 1_000 and +1 are refused.
var decimalInt = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// The top-level keys, in the order the format lists them.
var topKeys = []string{"version", "as", "strict", "skew", "grace", "max_depth", "require_capability",
	"ttl", "actions", "unknown_actions", "approvals"}

// mapping walks the pairs of a mapping, refusing duplicate and unknown keys.
func mapping(n *node, field string, known []string, each func(key string, k, v *node) error) error {
	if n.kind != kMap {
		return errAt(n, field, "want a mapping, got %s", n.describe())
	}
	seen := map[string]int{}
	for i, k := range n.keys {
		name := k.text
		path := name
		if field != "" {
			path = field + "." + name
		}
		if line, dup := seen[name]; dup {
			return errAt(k, path, "duplicate key (first at line %d)", line)
		}
		seen[name] = k.line
		if !slices.Contains(known, name) {
			msg := fmt.Sprintf("unknown key %q", name)
			if s := suggest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return errAt(k, field, "%s; known keys: %s", msg, strings.Join(known, ", "))
		}
		if err := each(name, k, n.vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// suggest returns the known key a misspelt key most likely meant (case, - for _), or "".
func suggest(key string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
	}
	return ""
}

func wantString(n *node, field string) (string, error) {
	if n.kind != kStr {
		return "", errAt(n, field, "want a string, got %s", n.describe())
	}
	return n.text, nil
}

func wantBool(n *node, field string) (bool, error) {
	if n.kind != kBool {
		return false, errAt(n, field, "want true or false, got %s", n.describe())
	}
	return n.text == "true", nil
}

func wantInt(n *node, field string, lo, hi int) (int, error) {
	if n.kind != kInt {
		return 0, errAt(n, field, "want an integer, got %s", n.describe())
	}
	if !decimalInt.MatchString(n.text) {
		return 0, errAt(n, field, "%q: write a plain decimal integer, like 5", n.text)
	}
	v, err := strconv.ParseInt(n.text, 10, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		return 0, errAt(n, field, "%s is outside %d..%d", n.text, lo, hi)
	}
	return int(v), nil
}

var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}

// wantDuration reads a duration: a whole number and one unit (ms, s, m, h), like "900s",
// inside lo..hi.
func wantDuration(n *node, field string, lo, hi time.Duration) (time.Duration, error) {
	if n.kind == kInt {
		return 0, errAt(n, field, "%s is a number, not a duration: give it a unit, like \"%ss\"", n.text, n.text)
	}
	s, err := wantString(n, field)
	if err != nil {
		return 0, errAt(n, field, "want a duration like \"30s\", got %s", n.describe())
	}
	bad := errAt(n, field, "%q is not a duration: write a whole number and one unit (ms, s, m or h), like \"90s\"", s)
	for _, u := range durationUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		if num == "" || num[0] == '-' || !decimalInt.MatchString(num) {
			return 0, bad
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > math.MaxInt64/int64(u.unit) {
			return 0, errAt(n, field, "%s is more than the maximum %s", s, formatDuration(hi))
		}
		d := time.Duration(v) * u.unit
		switch {
		case d < lo && d == 0:
			return 0, errAt(n, field, "%s: must be more than zero", s)
		case d < lo:
			return 0, errAt(n, field, "%s is less than the minimum %s", s, formatDuration(lo))
		case d > hi:
			return 0, errAt(n, field, "%s is more than the maximum %s", s, formatDuration(hi))
		}
		return d, nil
	}
	return 0, bad
}

// checkName validates an agent id or an action pattern: printable ASCII, no space.
func checkName(n *node, field, s string) error {
	if s == "" {
		return errAt(n, field, "is empty")
	}
	for _, r := range s {
		switch {
		case r == ' ' || r < 0x20 || r == 0x7f:
			return errAt(n, field, "%q contains a space or a control character", s)
		case r > 0x7e:
			return errAt(n, field, "%q contains the non-ASCII character %U: names here are plain ASCII", s, r)
		}
	}
	return nil
}

func decode(root *node) (*Policy, error) {
	p := &Policy{}
	var version *node
	var ttlNode *node
	err := mapping(root, "", topKeys, func(key string, k, v *node) error {
		var err error
		switch key {
		case "version":
			version = v
			n, err := wantInt(v, key, math.MinInt32, math.MaxInt32)
			if err == nil && n != Version {
				err = errAt(v, key, "unsupported version %d (this build reads version %d)", n, Version)
			}
			return err
		case "as":
			if p.as, err = wantString(v, key); err == nil {
				err = checkName(v, key, p.as)
			}
		case "strict":
			p.strict, err = wantBool(v, key)
		case "skew":
			p.skew, err = ptr(wantDuration(v, key, 0, MaxSkew))
		case "grace":
			p.grace, err = ptr(wantDuration(v, key, 0, MaxGrace))
		case "max_depth":
			p.maxDepth, err = ptr(wantInt(v, key, 0, MaxDelegationDepth))
		case "require_capability":
			p.requireCap, err = wantBool(v, key)
		case "ttl":
			ttlNode = v
			err = mapping(v, key, []string{"read", "write"}, func(name string, _, v *node) error {
				d, err := wantDuration(v, key+"."+name, time.Millisecond, MaxTTL)
				if name == "read" {
					p.ttlRead = &d
				} else {
					p.ttlWrite = &d
				}
				return err
			})
		case "actions":
			err = p.decodeActions(v)
		case "unknown_actions":
			if p.unknown, err = wantString(v, key); err == nil && p.unknown != UnknownWrite && p.unknown != UnknownRead && p.unknown != UnknownReject {
				err = errAt(v, key, "%q is not write, read or reject (leave the key out for the built-in classifier)", p.unknown)
			}
		case "approvals":
			err = mapping(v, key, []string{"threshold", "ai_generated_write"}, func(name string, _, v *node) error {
				var err error
				if name == "threshold" {
					p.threshold, err = ptr(wantInt(v, key+"."+name, 1, MaxThreshold))
				} else {
					p.aiWrite, err = wantBool(v, key+"."+name)
				}
				return err
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if version == nil {
		return nil, errAt(root, "version", "missing: a policy starts with version: %d", Version)
	}
	if s := p.Settings(); s.TTLWrite > s.TTLRead {
		return nil, errAt(ttlNode, "ttl.write", "%s is longer than the read TTL %s: a write handoff may not outlive a read one",
			formatDuration(s.TTLWrite), formatDuration(s.TTLRead))
	}
	return p, nil
}

func ptr[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (p *Policy) decodeActions(n *node) error {
	if n.kind != kSeq {
		return errAt(n, "actions", "want a list of rules, got %s", n.describe())
	}
	if len(n.items) > MaxRules {
		return errAt(n, "actions", "%d rules: at most %d", len(n.items), MaxRules)
	}
	p.rules = make([]rule, 0, len(n.items))
	for i, item := range n.items {
		field := fmt.Sprintf("actions[%d]", i)
		r := rule{line: item.line}
		var hasMatch, hasRisk, hasReview bool
		var denyKey *node
		err := mapping(item, field, []string{"match", "risk", "review", "deny"}, func(key string, k, v *node) error {
			var err error
			path := field + "." + key
			switch key {
			case "match":
				hasMatch = true
				if r.match, err = wantString(v, path); err == nil {
					err = checkMatch(v, path, r.match)
				}
			case "risk":
				hasRisk = true
				if r.risk, err = wantString(v, path); err == nil && r.risk != packet.RiskRead && r.risk != packet.RiskWrite {
					err = errAt(v, path, "%q is not read or write", r.risk)
				}
			case "review":
				hasReview = true
				r.review, err = wantBool(v, path)
			case "deny":
				denyKey = k
				r.deny, err = wantBool(v, path)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !hasMatch {
			return errAt(item, field, "missing match (an action name, or a prefix followed by *)")
		}
		if r.deny && (hasRisk || hasReview) {
			return errAt(denyKey, field, "a deny rule takes no risk or review: the action is never accepted")
		}
		for j := range p.rules {
			if e := &p.rules[j]; e.covers(&r) {
				return errAt(item, field, "%q can never match: actions[%d] %q (line %d) matches it first", r.match, j, e.match, e.line)
			}
		}
		p.rules = append(p.rules, r)
	}
	return nil
}

// checkMatch validates an action pattern: an exact action name, or a prefix followed by
// "*" ("*" alone matches every action).
func checkMatch(n *node, field, s string) error {
	if s == "" {
		return errAt(n, field, "is empty (give an action name, or a prefix followed by *)")
	}
	body := strings.TrimSuffix(s, "*")
	if strings.ContainsRune(body, '*') {
		return errAt(n, field, "%q: * may only end a pattern (a prefix followed by *)", s)
	}
	if strings.ContainsRune(body, ',') {
		return errAt(n, field, "%q contains a comma, which no action name has", s)
	}
	if body == "" {
		return nil
	}
	return checkName(n, field, body)
}
