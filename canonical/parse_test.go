package canonical

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseRejectsHostileInput(t *testing.T) {
	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	cases := map[string]string{
		"empty":                    ``,
		"duplicate key":            `{"a":1,"a":2}`,
		"duplicate key, nested":    `{"x":{"b":1,"b":1}}`,
		"duplicate key, escaped":   `{"a":1,"\u0061":2}`,
		"NaN":                      `NaN`,
		"Infinity":                 `[Infinity]`,
		"-Infinity":                `-Infinity`,
		"float overflow":           `1e400`,
		"lone high surrogate":      `"\ud800"`,
		"lone low surrogate":       `"\udc00"`,
		"reversed surrogates":      `"\udc00\ud800"`,
		"invalid UTF-8":            "\"\xff\"",
		"overlong UTF-8":           "\"\xc0\xaf\"",
		"UTF-8 surrogate":          "\"\xed\xa0\x80\"",
		"raw control char":         "\"a\x01b\"",
		"raw newline":              "\"a\nb\"",
		"bad escape":               `"\x41"`,
		"trailing comma":           `[1,]`,
		"trailing data":            `{} {}`,
		"leading zero":             `01`,
		"bare minus":               `-`,
		"plus sign":                `+1`,
		"dot without digits":       `1.`,
		"single quotes":            `{'a':1}`,
		"too deep":                 deep,
		"unterminated":             `{"a":`,
		"non-string key":           `{1:2}`,
		"comment":                  `{} // x`,
		"python True":              `True`,
		"many duplicate keys late": `{` + manyKeys(100) + `}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(in), Limits{})
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) = %v, want a syntax error", in, err)
			}
		})
	}
	if _, err := Parse([]byte(`[1,2,3]`), Limits{MaxBytes: 5}); err == nil {
		t.Error("size limit not enforced")
	}
	if _, err := Parse([]byte(deep[1:len(deep)-1]), Limits{}); err != nil {
		t.Errorf("depth 64 must be accepted: %v", err)
	}
}

// manyKeys returns n distinct members "k0".."k<n-1>" followed by a duplicate of "k50",
// so the duplicate is found by the map index, not the linear scan.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"k%d":0,`, i)
	}
	return b.String() + `"k50":1`
}

func TestParseValues(t *testing.T) {
	v, err := Parse([]byte(` {"b": [1, -0, 1.5e3, "\u00e9\ud83d\ude00", true, null], "a": {}} `), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Obj[0].Key != "b" || v.Obj[1].Key != "a" {
		t.Fatal("member order not kept")
	}
	arr := v.Obj[0].Value.Arr
	if arr[1].Kind != Int || arr[1].Str != "0" {
		t.Errorf("-0 is the int 0 in Python: %+v", arr[1])
	}
	if arr[2].Kind != Float || arr[2].Float != 1500 {
		t.Errorf("float: %+v", arr[2])
	}
	if arr[3].Str != "é😀" {
		t.Errorf("string: %q", arr[3].Str)
	}
	out, _ := Marshal(&v, Wire())
	if want := `{"a": {}, "b": [1, 0, 1500.0, "\u00e9\ud83d\ude00", true, null]}`; string(out) != want {
		t.Errorf("wire:\n got %s\nwant %s", out, want)
	}
	out, _ = Marshal(&v, PacketV033())
	if want := `{"b":[1,0,1500.0,"é😀",true,null],"a":{}}`; string(out) != want {
		t.Errorf("pydantic:\n got %s\nwant %s", out, want)
	}
	if _, err := Marshal(&v, OutcomeHash()); !errors.Is(err, ErrFloat) {
		t.Errorf("outcome hash must refuse floats: %v", err)
	}
}

func TestTimestamps(t *testing.T) {
	good := map[string][3]string{ // input -> ISOZ, ISOOffset, PyStr
		"2026-04-01T12:00:00Z":             {"2026-04-01T12:00:00Z", "2026-04-01T12:00:00+00:00", "2026-04-01 12:00:00+00:00"},
		"2026-04-01T12:00:00.5+00:00":      {"2026-04-01T12:00:00.500000Z", "2026-04-01T12:00:00.500000+00:00", "2026-04-01 12:00:00.500000+00:00"},
		"2026-04-01T14:00:00+02:00":        {"2026-04-01T14:00:00+02:00", "2026-04-01T14:00:00+02:00", "2026-04-01 14:00:00+02:00"},
		"2026-04-01t01:02:03.000001-05:30": {"2026-04-01T01:02:03.000001-05:30", "2026-04-01T01:02:03.000001-05:30", "2026-04-01 01:02:03.000001-05:30"},
		"2024-02-29T00:00:00z":             {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00+00:00", "2024-02-29 00:00:00+00:00"},
	}
	for in, want := range good {
		ts, err := ParseTimestamp(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		for i, style := range []TimeStyle{ISOZ, ISOOffset, PyStr} {
			if got := FormatTimestamp(ts, style); got != want[i] {
				t.Errorf("%s style %d: %s, want %s", in, i, got, want[i])
			}
		}
	}
	for _, bad := range []string{"2026-04-01T12:00:00", "2026-04-01 12:00:00Z", "2026-02-30T00:00:00Z", "2026-04-01T24:00:00Z",
		"2026-04-01T12:00:60Z", "2026-04-01T12:00:00.1234567Z", "2026-04-01T12:00:00+24:00", "2026-04-01T12:00:00+0200",
		"0000-01-01T00:00:00Z", "2026-4-01T12:00:00Z", "2026-04-01T12:00:00.Z", ""} {
		if _, err := ParseTimestamp(bad); !errors.Is(err, ErrTimestamp) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}
