package canonical

import (
	"bytes"
	"testing"
)

// FuzzParse: no input panics the parser; every accepted input re-encodes to a stable
// canonical form in every style (parse → encode → parse → encode is a fixed point).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"é\u2028\ud83d\ude00"}}`,
		`[1e-05, 1e16, -0.0, 0.1, 123456789012345678901234567890]`,
		`"\u0000\u007f\\\"/"`, `{"a":1,"a":2}`, `NaN`, `1e400`, `"\ud800"`, "\"\xff\"",
		`[[[[[[[[[[]]]]]]]]]]`, ` {"x" : -0 } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, Limits{MaxDepth: 32})
		if err != nil {
			return
		}
		for _, style := range []Style{Wire(), PacketV04(), PacketV033(), CompactSorted(), OutcomeHash()} {
			first, err := Marshal(&v, style)
			if err != nil {
				if style.Floats == NoFloats {
					continue
				}
				t.Fatalf("encode %+v: %v", style, err)
			}
			v2, err := Parse(first, Limits{MaxDepth: 32})
			if err != nil {
				t.Fatalf("re-parse of %q: %v", first, err)
			}
			second, err := Marshal(&v2, style)
			if err != nil || !bytes.Equal(first, second) {
				t.Fatalf("unstable in %+v:\n%q\n%q (%v)", style, first, second, err)
			}
		}
	})
}

// FuzzTimestamp: no panic; accepted datetimes re-format and re-parse to the same instant and offset.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2026-04-01T12:00:00Z", "2026-04-01T14:00:00.123456+02:00", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		for _, style := range []TimeStyle{ISOZ, ISOOffset} {
			out := FormatTimestamp(ts, style)
			back, err := ParseTimestamp(out)
			if err != nil || back != ts {
				t.Fatalf("%q -> %q -> %+v, %v (want %+v)", s, out, back, err, ts)
			}
		}
	})
}
