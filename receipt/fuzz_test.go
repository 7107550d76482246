package receipt_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// FuzzParse: Parse never panics; whatever it accepts marshals to bytes that parse back to
// the same receipt with the same digest, its signing bytes are the canonical encoding of
// its fields, and Verify on it returns a known reason code.
func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	env := fx.handoff(f, fx.bob)
	p := params()
	p.Reason = []byte("why")
	p.DependsOn = [][32]byte{{1}}
	for _, r := range []*receipt.Receipt{fx.sign(f, fx.bob, env, params()), fx.sign(f, fx.bob, env, p)} {
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// A packet_id that needs escaping (non-ASCII, astral, quote, backslash).
		f.Add(bytes.Replace(b, []byte(`"packet_id":"`+r.PacketID+`"`), []byte(`"packet_id":"\u00e9x\ud83d\ude00\"\\\u0007"`), 1))
	}
	f.Add([]byte(`{"version":"trusthandoff/receipt/v1"}`))
	f.Add([]byte(`{"depends_on":[[[]]]}`))
	v := fx.verifier(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := receipt.Parse(data)
		if err != nil {
			if !reason.Known(reason.Of(err, "")) {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted receipt does not marshal: %v", err)
		}
		r2, err := receipt.Parse(b)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, b)
		}
		b2, _ := r2.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatalf("unstable:\n%s\n%s", b, b2)
		}
		// The hand-written signing encoding is the generic canonical one.
		sb, err := r.SigningBytes()
		want, werr := receipt.SigningBytesViaValue(r)
		if err != nil || werr != nil || !bytes.Equal(sb, want) {
			t.Fatalf("signing bytes differ from the canonical encoding (%v, %v):\n%s\n%s", err, werr, sb, want)
		}
		d1, err1 := r.Digest()
		d2, err2 := r2.Digest()
		if err1 != nil || err2 != nil || d1 != d2 {
			t.Fatal("digest changed through a round trip")
		}
		err = v.Verify(context.Background(), r, env, receipt.VerifyOptions{DryRun: true})
		if code := reason.Of(err, ""); !reason.Known(code) || code == "" {
			t.Fatalf("Verify: %v", err)
		}
	})
}
