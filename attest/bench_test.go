package attest

import (
	"crypto/ed25519"
	"testing"
)

// The benchmarks use the reference vector att_ok_valid at its own clock. BareVerify is the
// floor: one ed25519.Verify over the same framed bytes.

func benchVector(b *testing.B) (*vector, ed25519.PublicKey) {
	for _, v := range loadVectors(b) {
		if v.ID == "att_ok_valid" {
			return v, v.pub(b)
		}
	}
	b.Fatal("vector att_ok_valid not found")
	return nil, nil
}

func BenchmarkBareVerify(b *testing.B) {
	v, pub := benchVector(b)
	a, err := Parse([]byte(v.AttestationJSON))
	if err != nil {
		b.Fatal(err)
	}
	msg, sig := a.FramedBytes(), a.Signature[:]
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkVerifyAttestation(b *testing.B) {
	v, pub := benchVector(b)
	data := []byte(v.AttestationJSON)
	now := v.now()
	b.Run("parse=excluded", func(b *testing.B) {
		a, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := Verify(a, pub, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse=included", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := Verify(a, pub, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse=included/store=memory", func(b *testing.B) {
		// Every iteration records the same nonce in a store that forgets, so the replay
		// path is measured without rejecting.
		store := forgetfulStore{}
		b.ReportAllocs()
		for b.Loop() {
			a, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if err := Verify(a, pub, now, WithNonceStore(store)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	v, _ := benchVector(b)
	data := []byte(v.AttestationJSON)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
