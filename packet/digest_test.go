package packet_test

import (
	"crypto/sha256"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// TestVerifySignatureDigest: the digest is the SHA-256 of the bytes signed under the rule
// that verified (for either rule), and zero when nothing verified.
func TestVerifySignatureDigest(t *testing.T) {
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	other, _ := identity.Generate()
	for _, rule := range []packet.Rule{packet.Rule04, packet.Rule033} {
		env, err := packet.Build(s, "agent:receiver0123", "summarize", packet.WithActions("read"))
		if err != nil {
			t.Fatal(err)
		}
		p := env.Packet
		if err := p.Sign(s, rule); err != nil {
			t.Fatal(err)
		}
		msg, err := p.SigningBytes(nil, rule)
		if err != nil {
			t.Fatal(err)
		}
		r, dg, err := p.VerifySignatureDigest(s.Public(), nil)
		if err != nil || r != rule || dg != sha256.Sum256(msg) {
			t.Fatalf("rule %s: got %s %x %v, want the digest of the %s bytes", rule, r, dg, err, rule)
		}
		if _, dg, err := p.VerifySignatureDigest(identity.NewKeySigner(other).Public(), nil); err == nil || dg != ([32]byte{}) {
			t.Fatalf("rule %s under another key: %x %v", rule, dg, err)
		}
	}
}
