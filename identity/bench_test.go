package identity

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkCheckPublicKey: "memo" is a key checked before (every capability link of a
// known issuer), "curve" the first sight of a key (the math/big curve test).
func BenchmarkCheckPublicKey(b *testing.B) {
	k, _ := Generate()
	pub := k.Public().(ed25519.PublicKey)
	b.Run("memo", func(b *testing.B) {
		for b.Loop() {
			if CheckPublicKey(pub) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("curve", func(b *testing.B) {
		y := [32]byte(pub)
		y[31] &= 0x7f
		for b.Loop() {
			if !onCurve(&y) {
				b.Fatal("refused")
			}
		}
	})
}

func BenchmarkParsePublicKeyPEM(b *testing.B) {
	k, _ := Generate()
	text := PublicKeyPEM(k.Public().(ed25519.PublicKey))
	for b.Loop() {
		if _, err := ParsePublicKeyPEM(text); err != nil {
			b.Fatal(err)
		}
	}
}
