package attest

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

func FuzzParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.AttestationJSON))
	}
	a := newAttestation(f, true)
	out, _ := a.Marshal()
	f.Add(out)
	f.Add([]byte(`{"packet_id":"\u00e9\ud83d\ude00","status":"OK"}`))
	f.Add([]byte(`{"nonce":340282366920938463463374607431768211456}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			if a != nil {
				t.Fatal("Parse returned an attestation and an error")
			}
			return
		}
		first, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed attestation: %v", err)
		}
		b, err := Parse(first)
		if err != nil {
			t.Fatalf("Parse(Marshal(a)): %v\n%s", err, first)
		}
		if !equal(a, b) {
			t.Fatalf("Parse(Marshal(a)) != a:\n%+v\n%+v", a, b)
		}
		second, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("Marshal is not stable:\n%s\n%s", first, second)
		}
		if got := a.FramedBytes(); len(got) != a.framedLen() {
			t.Fatalf("framedLen = %d, FramedBytes is %d bytes", a.framedLen(), len(got))
		}
	})
}

func FuzzOutcomeHash(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Result))
		if v.Reason != nil {
			f.Add([]byte(v.Reason))
		}
	}
	for _, s := range []string{`{"a":1.5}`, `{"b":1,"a":[true,null,"\u2028\u0000\ud83d\ude00"]}`, `-0`, `1e400`, `"x"`, `{"é":{"e":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := canonical.Parse(data, canonical.Limits{})
		if err != nil {
			return
		}
		h, err := OutcomeHash(v)
		if err != nil {
			if !hasFloat(&v) {
				t.Fatalf("OutcomeHash failed without a float: %v", err)
			}
			return
		}
		if hasFloat(&v) {
			t.Fatal("OutcomeHash accepted a float")
		}
		// The canonical form is a fixed point: it parses back to a value with the same hash.
		c, err := canonical.Marshal(&v, canonical.OutcomeHash())
		if err != nil {
			t.Fatal(err)
		}
		w, err := canonical.Parse(c, canonical.Limits{MaxBytes: len(c) + 1})
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c)
		}
		if h2, err := OutcomeHash(w); err != nil || h2 != h {
			t.Fatalf("hash of the canonical form differs: %v", err)
		}
	})
}

func hasFloat(v *canonical.Value) bool {
	switch v.Kind {
	case canonical.Float:
		return true
	case canonical.Array:
		for i := range v.Arr {
			if hasFloat(&v.Arr[i]) {
				return true
			}
		}
	case canonical.Object:
		for i := range v.Obj {
			if hasFloat(&v.Obj[i].Value) {
				return true
			}
		}
	}
	return false
}

func FuzzNonce(f *testing.F) {
	f.Add("0")
	f.Add("340282366920938463463374607431768211455")
	f.Add("340282366920938463463374607431768211456")
	f.Add("18446744073709551616")
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNonce(s)
		b, ok := new(big.Int).SetString(s, 10)
		valid := ok && b.Sign() >= 0 && b.Cmp(limit) < 0 && b.String() == s
		if valid != (err == nil) {
			t.Fatalf("ParseNonce(%q) error = %v, want valid=%v", s, err, valid)
		}
		if err != nil {
			return
		}
		if new(big.Int).SetBytes(n[:]).Cmp(b) != 0 || n.String() != s {
			t.Fatalf("ParseNonce(%q) = %s", s, n)
		}
	})
}
