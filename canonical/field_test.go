package canonical_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

func TestFieldReads(t *testing.T) {
	// Each case reads field "f" of a parsed document with one typed read.
	read := map[string]func(v *canonical.Value) (any, error){
		"AsString":    func(v *canonical.Value) (any, error) { return v.AsString("f") },
		"AsID":        func(v *canonical.Value) (any, error) { return v.AsID("f") },
		"AsOptString": func(v *canonical.Value) (any, error) { s, err := v.AsOptString("f"); return deref(s), err },
		"AsStrings":   func(v *canonical.Value) (any, error) { s, err := v.AsStrings("f"); return fmt.Sprint(s), err },
		"AsBool":      func(v *canonical.Value) (any, error) { return v.AsBool("f") },
		"AsInt64":     func(v *canonical.Value) (any, error) { return v.AsInt64("f") },
		"AsOptInt64":  func(v *canonical.Value) (any, error) { n, err := v.AsOptInt64("f"); return deref(n), err },
		"AsTimestamp": func(v *canonical.Value) (any, error) {
			ts, err := v.AsTimestamp("f")
			return canonical.FormatTimestamp(ts, canonical.ISOOffset), err
		},
		"AsObject":    func(v *canonical.Value) (any, error) { o, err := v.AsObject("f"); return o != nil, err },
		"AsOptObject": func(v *canonical.Value) (any, error) { o, err := v.AsOptObject("f"); return o != nil, err },
	}
	cases := []struct {
		read, json string
		want       any    // the value read, when wantErr is ""
		wantErr    string // the FieldError's text
	}{
		{"AsString", `"x"`, "x", ""},
		{"AsString", `""`, "", ""},
		{"AsString", `1`, nil, "f must be a string, not integer"},
		{"AsID", `"x"`, "x", ""},
		{"AsID", `""`, nil, "f must not be empty"},
		{"AsID", `null`, nil, "f must be a string, not null"},
		{"AsOptString", `null`, "<nil>", ""},
		{"AsOptString", `"x"`, "x", ""},
		{"AsOptString", `true`, nil, "f must be a string or null, not boolean"},
		{"AsStrings", `[]`, "[]", ""},
		{"AsStrings", `["a","b"]`, "[a b]", ""},
		{"AsStrings", `"a"`, nil, "f must be an array of strings, not string"},
		{"AsStrings", `["a",2]`, nil, "f[1] must be a string, not integer"},
		{"AsBool", `false`, false, ""},
		{"AsBool", `0`, nil, "f must be a boolean, not integer"},
		{"AsInt64", `-9223372036854775808`, int64(-1 << 63), ""},
		{"AsInt64", `9223372036854775808`, nil, "f 9223372036854775808 is out of the 64-bit integer range"},
		{"AsInt64", `3.0`, nil, "f must be an integer, not float"},
		{"AsInt64", `null`, nil, "f must be an integer, not null"},
		{"AsOptInt64", `null`, "<nil>", ""},
		{"AsOptInt64", `7`, "7", ""},
		{"AsOptInt64", `"7"`, nil, "f must be an integer or null, not string"},
		{"AsOptInt64", `1000000000000000000000000000000000000000000000000`, nil, "f 1000000000000000000000000000000000000000… is out of the 64-bit integer range"},
		{"AsTimestamp", `"2026-04-01T12:00:00+02:00"`, "2026-04-01T12:00:00+02:00", ""},
		{"AsTimestamp", `"2026-04-01T12:00:00"`, nil, `f must be an RFC 3339 datetime: invalid datetime "2026-04-01T12:00:00": want YYYY-MM-DDTHH:MM:SS with a UTC offset`},
		{"AsTimestamp", `1`, nil, "f must be a datetime string, not integer"},
		{"AsObject", `{}`, true, ""},
		{"AsObject", `null`, nil, "f must be an object, not null"},
		{"AsOptObject", `{}`, true, ""},
		{"AsOptObject", `null`, false, ""},
		{"AsOptObject", `[]`, nil, "f must be an object or null, not array"},
	}
	for _, c := range cases {
		t.Run(c.read+" "+c.json, func(t *testing.T) {
			v, err := canonical.Parse([]byte(c.json), canonical.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := read[c.read](&v)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Fatalf("got %v, %v; want %v", got, err, c.want)
				}
				return
			}
			var fe *canonical.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || err.Error() != c.wantErr || !errors.Is(err, canonical.ErrFieldType) {
				t.Fatalf("got error %v; want a FieldError %q wrapping ErrFieldType", err, c.wantErr)
			}
		})
	}
}

func TestFieldTimestampKeepsCause(t *testing.T) {
	v := canonical.Value{Kind: canonical.String, Str: "2026-13-01T00:00:00Z"}
	if _, err := v.AsTimestamp("issued_at"); !errors.Is(err, canonical.ErrTimestamp) || !errors.Is(err, canonical.ErrFieldType) {
		t.Fatalf("got %v, want an error that is both ErrTimestamp and ErrFieldType", err)
	}
}

func deref[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

func ExampleValue_AsString() {
	v, _ := canonical.Parse([]byte(`{"to_agent": 42}`), canonical.Limits{})
	field, _ := v.Get("to_agent")
	_, err := field.AsString("to_agent")
	fmt.Println(err)
	// Output:
	// to_agent must be a string, not integer
}
