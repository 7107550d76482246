package packet

import (
	"crypto/ed25519"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

// typical is the reference's "typical read" vector, as a verifier receives it.
func typical(b *testing.B) (wire []byte, pub ed25519.PublicKey, msg, sig []byte) {
	v := loadPacketVectors(b, "packets_v0.4.0")["valid_02_typical_read.json"]
	env, err := ParseEnvelope([]byte(v.WireEnvelopeJSON), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	pub, err = identity.ParsePublicKeyPEM(env.Packet.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	msg, _ = env.Packet.SigningBytes(nil, Rule04)
	sig, _ = SignatureBytes(env.Packet.Signature)
	return []byte(v.WireEnvelopeJSON), pub, msg, sig
}

// BenchmarkBareVerify is the floor: one ed25519.Verify of the typical packet's signed bytes.
func BenchmarkBareVerify(b *testing.B) {
	_, pub, msg, sig := typical(b)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkVerifyPacket is parse + canonicalize + verify of the typical envelope.
func BenchmarkVerifyPacket(b *testing.B) {
	wire, pub, _, _ := typical(b)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := ParseEnvelope(wire, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Packet.VerifySignature(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCanonicalize is the overhead alone (no signature check).
func BenchmarkParseCanonicalize(b *testing.B) {
	wire, _, _, _ := typical(b)
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		env, err := ParseEnvelope(wire, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = env.Packet.SigningBytes(buf[:0], Rule04); err != nil {
			b.Fatal(err)
		}
	}
}
