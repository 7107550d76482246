package packet

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
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

func signedWire(t *testing.T, s identity.Signer) []byte {
	_, wire := signed(t, s)
	return wire
}

func signed(t *testing.T, s identity.Signer) (*Packet, []byte) {
	t.Helper()
	issued := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	p := &Packet{
		PacketID: "pkt-1", TaskID: "task-1", ToAgent: "agent:bob", Nonce: "n-1", Intent: "read",
		Permissions: Permissions{AllowedActions: []string{"read_tickets"}},
		IssuedAt:    canonical.TimestampOf(issued), ExpiresAt: canonical.TimestampOf(issued.Add(time.Minute)),
	}
	if err := p.Sign(s, Rule04); err != nil {
		t.Fatal(err)
	}
	wire, err := (&Envelope{Packet: p}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return p, wire
}

// TestPacketPublicKeyRefused: a packet whose public_key is a small-order, non-canonical,
// off-curve or non-Ed25519 key is malformed_envelope at decoding, before any registry is
// asked, including the identity-key packet whose forged signature crypto/ed25519 accepts.
func TestPacketPublicKeyRefused(t *testing.T) {
	key, _ := identity.Generate()
	good := signedWire(t, identity.NewKeySigner(key))
	if _, err := ParseEnvelope(good, Limits{}); err != nil {
		t.Fatalf("a valid packet: %v", err)
	}
	goodPEM := identity.PublicKeyPEM(identity.NewKeySigner(key).Public())

	// The forgery: the identity key's packet carries a signature that verifies.
	identityKey := rawPub(0x01, 0x00, 0x00)
	forgedPacket, forged := signed(t, forger{identityKey})
	if _, err := forgedPacket.VerifySignature(identityKey); err != nil {
		t.Fatalf("the forged signature should verify under crypto/ed25519 (that is the attack): %v", err)
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	swap := func(newPEM string) []byte {
		return []byte(strings.Replace(string(good), jsonString(goodPEM), jsonString(newPEM), 1))
	}
	cases := []struct {
		name string
		wire []byte
		want error // wrapped besides the reason code, when not nil
	}{
		{"identity key with a forged signature", forged, identity.ErrBadKey},
		{"identity key, x = -0", swap(identity.PublicKeyPEM(rawPub(0x01, 0x00, 0x80))), identity.ErrBadKey},
		{"identity key as y = p+1", swap(identity.PublicKeyPEM(rawPub(0xee, 0xff, 0x7f))), identity.ErrBadKey},
		{"order 2 key", swap(identity.PublicKeyPEM(rawPub(0xec, 0xff, 0x7f))), identity.ErrBadKey},
		{"order 4 key", swap(identity.PublicKeyPEM(rawPub(0x00, 0x00, 0x00))), identity.ErrBadKey},
		{"y = p", swap(identity.PublicKeyPEM(rawPub(0xed, 0xff, 0x7f))), identity.ErrBadKey},
		{"y = 2^255-1", swap(identity.PublicKeyPEM(rawPub(0xff, 0xff, 0xff))), identity.ErrBadKey},
		{"not a curve point (y = 2)", swap(identity.PublicKeyPEM(rawPub(0x02, 0x00, 0x00))), identity.ErrBadKey},
		{"ECDSA key", swap(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))), identity.ErrBadKey},
		{"not PEM", swap("hello"), identity.ErrBadKey},
		{"PEM without its final newline", swap(strings.TrimSuffix(goodPEM, "\n")), identity.ErrBadKey},
		{"public_key a number", []byte(strings.Replace(string(good), jsonString(goodPEM), "7", 1)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if string(c.wire) == string(good) {
				t.Fatal("the mutation did not apply")
			}
			_, err := ParseEnvelope(c.wire, Limits{})
			if reason.Of(err, "") != reason.MalformedEnvelope {
				t.Fatalf("got %v, want malformed_envelope", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("%v does not wrap %v", err, c.want)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := canonical.Marshal(&canonical.Value{Kind: canonical.String, Str: s}, canonical.Style{})
	return string(b)
}
