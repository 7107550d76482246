package attest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// OutcomeHash returns the SHA-256 of v in the reference's canonical form: compact, keys
// sorted by code point, raw UTF-8 (json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False)). Floats are forbidden: the error then wraps canonical.ErrFloat.
func OutcomeHash(v canonical.Value) ([32]byte, error) {
	b, err := canonical.Marshal(&v, canonical.OutcomeHash())
	if err != nil {
		return [32]byte{}, reason.Wrap(reason.MalformedEnvelope, "value cannot be hashed as an attestation outcome", err)
	}
	return sha256.Sum256(b), nil
}

// MaxPayloadSize is the reference's limit on the canonical JSON of a result or reason.
const MaxPayloadSize = 256 << 10

// minTimestampMS is the reference's floor for a new attestation (2020-01-01T00:00:00Z): a
// clock this far behind is broken, and its attestations would be stale everywhere.
const minTimestampMS = 1577836800000

// reservedKeys may not appear at the top level of a result or reason (reference rule).
var reservedKeys = [...]string{"packet_id", "attestation", "__control__"}

// CreateOption configures Create.
type CreateOption func(*createConfig) error

type createConfig struct {
	signedBy string
}

// WithSignedBy sets signed_by to the signer's registered agent id when it is not the id
// derived from the signing key: after a key rotation the agent keeps its id and signs with
// the new key. The receiver binds the two through its registry ([VerifyRegistered]).
func WithSignedBy(agentID string) CreateOption {
	return func(c *createConfig) error {
		if agentID == "" || !utf8.ValidString(agentID) {
			return malformed("signed_by must be a non-empty UTF-8 agent id")
		}
		c.signedBy = agentID
		return nil
	}
}

// Create signs a new attestation that the execution of packetID ended with status and
// result, and optionally reason (a nil reason, or a JSON null, means none). signed_by is
// the agent id derived from the signer's key unless [WithSignedBy] names another. As in the
// reference, result and reason must be JSON objects without the reserved top-level keys
// packet_id, attestation and __control__, at most MaxPayloadSize bytes in canonical form,
// and without floats. The nonce is 128 random bits from crypto/rand and the timestamp is
// now in milliseconds.
//
// Input errors are *reason.Error values with code malformed_envelope; a failing or faulty
// signer yields an error wrapping the signer's error or ErrSignature.
func Create(signer identity.Signer, packetID string, status Status, result canonical.Value, reason *canonical.Value, now time.Time, opts ...CreateOption) (*Attestation, error) {
	var cfg createConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if signer == nil {
		return nil, errors.New("attest: nil signer")
	}
	pub := signer.Public()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: signer's public key is %d bytes, not an Ed25519 key", ErrKeyMismatch, len(pub))
	}
	a := &Attestation{
		PacketID:    packetID,
		Status:      status,
		TimestampMS: now.UnixMilli(),
		SignedBy:    cfg.signedBy,
		Fingerprint: identity.Fingerprint(pub),
	}
	if a.SignedBy == "" {
		a.SignedBy = identity.AgentIDOf(pub)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	if a.TimestampMS < minTimestampMS {
		return nil, malformed("timestamp %s is before 2020-01-01: the clock is wrong", now.UTC().Format(time.RFC3339))
	}
	var err error
	if a.OutcomeHash, err = payloadHash(&result, "result"); err != nil {
		return nil, err
	}
	if reason != nil && reason.Kind != canonical.Null {
		h, err := payloadHash(reason, "reason")
		if err != nil {
			return nil, err
		}
		a.ReasonHash = &h
	}
	rand.Read(a.Nonce[:]) // never returns an error (crypto/rand, Go ≥ 1.24)

	msg := a.FramedBytes()
	sig, err := signer.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("attest: signing: %w", err)
	}
	// A remote signer (another process, a KMS) is checked rather than trusted: an attestation that
	// does not verify would only surface later, as an apparent forgery.
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("%w: the signer returned a signature that does not verify under its public key", ErrSignature)
	}
	copy(a.Signature[:], sig)
	return a, nil
}

// payloadHash applies the reference's validate_attestation_payload, then hashes.
func payloadHash(v *canonical.Value, name string) ([32]byte, error) {
	if v.Kind != canonical.Object {
		return [32]byte{}, malformed("%s must be a JSON object, not %s", name, v.Kind)
	}
	for _, m := range v.Obj {
		for _, k := range reservedKeys {
			if m.Key == k {
				return [32]byte{}, malformed("%s uses the reserved key %q", name, k)
			}
		}
	}
	b, err := canonical.Marshal(v, canonical.OutcomeHash())
	if err != nil {
		return [32]byte{}, reason.Wrap(reason.MalformedEnvelope, name+" cannot be hashed", err)
	}
	if len(b) > MaxPayloadSize {
		return [32]byte{}, malformed("%s is %d bytes in canonical form, over the %d-byte limit", name, len(b), MaxPayloadSize)
	}
	return sha256.Sum256(b), nil
}
