package capability

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// forger signs as a raw public key it does not hold, with R = identity, S = 0: a valid
// signature under the identity key for every message.
type forger struct{ pub ed25519.PublicKey }

func (f forger) Public() ed25519.PublicKey { return f.pub }
func (f forger) Sign([]byte) ([]byte, error) {
	sig := make([]byte, 64)
	sig[0] = 1
	return sig, nil
}

func rawPub(first, fill, last byte) ed25519.PublicKey {
	k := make(ed25519.PublicKey, 32)
	for i := range k {
		k[i] = fill
	}
	k[0], k[31] = first, last
	return k
}

// yesRegistry holds every key for every agent: the worst registry, to show that the key
// check does not depend on it.
type yesRegistry struct{}

func (yesRegistry) KeyValid(string, ed25519.PublicKey, time.Time) bool { return true }

var badKeys = []struct {
	name string
	key  ed25519.PublicKey
}{
	{"identity point", rawPub(0x01, 0x00, 0x00)},
	{"identity point, x = -0", rawPub(0x01, 0x00, 0x80)},
	{"identity as y = p+1", rawPub(0xee, 0xff, 0x7f)},
	{"order 2", rawPub(0xec, 0xff, 0x7f)},
	{"order 4", rawPub(0x00, 0x00, 0x80)},
	{"order 8", ed25519.PublicKey{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}},
	{"y = p", rawPub(0xed, 0xff, 0x7f)},
	{"y = 2^255-1", rawPub(0xff, 0xff, 0xff)},
	{"not a curve point", rawPub(0x02, 0x00, 0x00)},
}

// forgedLink is the capability an attacker builds for a small-order key: a valid link of
// alice's, re-keyed, re-attributed to the key's agent id and given the signature
// R = identity, S = 0. As a hand-built value it has no decoded-key cache.
func forgedLink(t *testing.T, key ed25519.PublicKey) *Capability {
	t.Helper()
	c := forge(t, nil, spec{id: "forged", by: alice, to: bob, perms: perms(i64(3), "read")})
	pemText := identity.PublicKeyPEM(key)
	return &Capability{CapabilityID: c.CapabilityID, IssuerAgent: identity.AgentID(pemText), SubjectAgent: c.SubjectAgent,
		Permissions: c.Permissions, Constraints: c.Constraints, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt,
		SignatureAlgo: Algorithm, Signature: encodeSig(forgedSig()), PublicKey: pemText}
}

// TestCapabilityPublicKeyRefused: a capability whose public_key is a small-order,
// non-canonical or off-curve key is malformed_envelope when decoded, never verifies as a
// hand-built value either, even under a registry that vouches for every key (the
// identity-key link carries a signature crypto/ed25519 accepts), cannot be issued, and
// cannot be put in a StaticRegistry.
func TestCapabilityPublicKeyRefused(t *testing.T) {
	for _, k := range badKeys {
		t.Run(k.name, func(t *testing.T) {
			c := forgedLink(t, k.key)
			if k.name == "identity point" && !ed25519.Verify(k.key, c.SigningBytes(), forgedSig()) {
				t.Fatal("the forged signature should verify under crypto/ed25519 (that is the attack)")
			}
			_, err := DecodeToken(c.Token(), Limits{})
			if codeOf(err) != reason.MalformedEnvelope || !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("DecodeToken: %v", err)
			}
			if _, err := DecodeChain([]string{c.Token()}, Limits{}); codeOf(err) != reason.MalformedEnvelope {
				t.Fatalf("DecodeChain: %v", err)
			}
			if c.VerifySignature() {
				t.Fatal("VerifySignature accepted the forged link")
			}
			if err := VerifyChain([]*Capability{c}, yesRegistry{}, t0.Add(time.Minute)); codeOf(err) != reason.CapabilityInvalid {
				t.Fatalf("VerifyChain: %v", err)
			}
			_, err = Issue(forger{k.key}, bob.id, perms(i64(3), "read"), nil, t0, t0.Add(time.Hour))
			if codeOf(err) != reason.CapabilityInvalid || !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("Issue with the key: %v", err)
			}
			if _, err := NewStaticRegistry(map[string]string{"agent:x": identity.PublicKeyPEM(k.key)}); !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("NewStaticRegistry: %v", err)
			}
		})
	}
}

// TestCapabilityPublicKeySwapped: the same refusal for a valid token whose public_key text
// is replaced, so the token's other fields are authentic.
func TestCapabilityPublicKeySwapped(t *testing.T) {
	c := forge(t, nil, spec{id: "root", by: alice, to: bob, perms: perms(i64(3), "read")})
	if _, err := DecodeToken(c.Token(), Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range badKeys {
		t.Run(k.name, func(t *testing.T) {
			d := clone(c)
			d.PublicKey = identity.PublicKeyPEM(k.key)
			d.pub, d.pubText = nil, ""
			_, err := DecodeToken(d.Token(), Limits{})
			if codeOf(err) != reason.MalformedEnvelope || !strings.Contains(err.Error(), "public_key") {
				t.Fatalf("DecodeToken: %v", err)
			}
		})
	}
}

func forgedSig() []byte {
	sig, _ := forger{}.Sign(nil)
	return sig
}
