// Package approval implements signed human approvals: a human's decision,
// approve or deny, bound to one packet by the digest of the packet's signed bytes, signed
// by a key registered with the approver role, and valid for a bounded time.
//
// This replaces the reference's gate, which passes when the sender itself writes any truthy
// context["human_approval"]. Approvals travel in the envelope's "approvals" list, beside
// the packet, never inside its signed bytes.
package approval

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Version is the approval format version; it is also the signature's domain separator.
const Version = "trusthandoff/approval/v1"

// Decisions.
const (
	Approve = "approve"
	Deny    = "deny"
)

// RoleApprover is the registry role an approver's key must hold.
const RoleApprover = "approver"

// MaxTTL bounds an approval's lifetime.
const MaxTTL = 24 * time.Hour

// Approval is one signed decision.
type Approval struct {
	Version       string
	ApprovalID    string
	PacketDigest  string // hex sha256 of the packet's signed bytes
	Approver      string // agent id
	Decision      string // approve | deny
	IssuedAt      canonical.Timestamp
	ExpiresAt     canonical.Timestamp
	Note          string
	SignatureAlgo string
	Signature     string // standard base64, 64 bytes
	PublicKey     string // SPKI PEM
}

// Digest returns the packet digest an approval names: sha256 of the bytes the packet was
// signed under rule r (the rule its signature verifies under).
func Digest(p *packet.Packet, r packet.Rule) ([32]byte, error) {
	msg, err := p.SigningBytes(nil, r)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(msg), nil
}

// New signs an approval of the packet with the given digest.
func New(s identity.Signer, digest [32]byte, decision string, now time.Time, ttl time.Duration, note string) (*Approval, error) {
	if decision != Approve && decision != Deny {
		return nil, fmt.Errorf("approval: decision must be %q or %q", Approve, Deny)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return nil, fmt.Errorf("approval: ttl %v is outside (0, %v]", ttl, MaxTTL)
	}
	pemText := identity.PublicKeyPEM(s.Public())
	a := &Approval{
		Version:       Version,
		ApprovalID:    packet.NewID(),
		PacketDigest:  hex.EncodeToString(digest[:]),
		Approver:      identity.AgentID(pemText),
		Decision:      decision,
		IssuedAt:      canonical.TimestampOf(now.UTC()),
		ExpiresAt:     canonical.TimestampOf(now.Add(ttl).UTC()),
		Note:          note,
		SignatureAlgo: "Ed25519",
		PublicKey:     pemText,
	}
	sig, err := s.Sign(a.SigningBytes())
	if err != nil {
		return nil, fmt.Errorf("approval: signing: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("approval: signer returned a %d-byte signature", len(sig))
	}
	a.Signature = base64.StdEncoding.EncodeToString(sig)
	return a, nil
}

// Value returns the approval as a JSON object value (signature included).
func (a *Approval) Value() canonical.Value { return a.value(true) }

func (a *Approval) value(withSig bool) canonical.Value {
	str := func(s string) canonical.Value { return canonical.Value{Kind: canonical.String, Str: s} }
	ts := func(t canonical.Timestamp) canonical.Value { return str(canonical.FormatTimestamp(t, canonical.ISOZ)) }
	m := []canonical.Member{
		{Key: "approval_id", Value: str(a.ApprovalID)},
		{Key: "approver", Value: str(a.Approver)},
		{Key: "decision", Value: str(a.Decision)},
		{Key: "expires_at", Value: ts(a.ExpiresAt)},
		{Key: "issued_at", Value: ts(a.IssuedAt)},
		{Key: "note", Value: str(a.Note)},
		{Key: "packet_digest", Value: str(a.PacketDigest)},
		{Key: "public_key", Value: str(a.PublicKey)},
	}
	if withSig {
		m = append(m, canonical.Member{Key: "signature", Value: str(a.Signature)})
	}
	m = append(m,
		canonical.Member{Key: "signature_algo", Value: str(a.SignatureAlgo)},
		canonical.Member{Key: "version", Value: str(a.Version)})
	return canonical.Value{Kind: canonical.Object, Obj: m}
}

// SigningBytes returns the signed message: the version line, then the compact sorted
// ASCII JSON of every field but the signature.
func (a *Approval) SigningBytes() []byte {
	v := a.value(false)
	out := append([]byte(Version), '\n')
	out, _ = canonical.Append(out, &v, canonical.CompactSorted()) // no floats: cannot fail
	return out
}

func malformed(format string, args ...any) error {
	return reason.New(reason.MalformedEnvelope, "approval: "+fmt.Sprintf(format, args...))
}

// malformedField gives a failed typed field read (a *canonical.FieldError, which names the
// field) the code malformed_envelope.
func malformedField(err error) error {
	return reason.Wrap(reason.MalformedEnvelope, "approval", err)
}

// FromValue strictly decodes an approval object (unknown fields, wrong types and missing
// fields are malformed_envelope).
func FromValue(v *canonical.Value) (*Approval, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("must be an object, not %s", v.Kind)
	}
	a := &Approval{}
	fields := map[string]*string{
		"version": &a.Version, "approval_id": &a.ApprovalID, "packet_digest": &a.PacketDigest,
		"approver": &a.Approver, "decision": &a.Decision, "note": &a.Note,
		"signature_algo": &a.SignatureAlgo, "signature": &a.Signature, "public_key": &a.PublicKey,
	}
	var issued, expires string
	fields["issued_at"], fields["expires_at"] = &issued, &expires
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		dst, ok := fields[m.Key]
		if !ok {
			return nil, malformed("unknown field %q", m.Key)
		}
		s, err := m.Value.AsString(m.Key)
		if err != nil {
			return nil, malformedField(err)
		}
		*dst = s
		seen++
	}
	if seen != len(fields) {
		return nil, malformed("missing fields (want all of version, approval_id, packet_digest, approver, decision, issued_at, expires_at, note, signature_algo, signature, public_key)")
	}
	if a.Version != Version {
		return nil, malformed("unsupported version %q", a.Version)
	}
	var err error
	if a.IssuedAt, err = canonical.ParseTimestamp(issued); err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "approval issued_at", err)
	}
	if a.ExpiresAt, err = canonical.ParseTimestamp(expires); err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "approval expires_at", err)
	}
	if d, err := hex.DecodeString(a.PacketDigest); err != nil || len(d) != 32 || hex.EncodeToString(d) != a.PacketDigest {
		return nil, malformed("packet_digest must be 64 lowercase hex digits")
	}
	if _, err := packet.SignatureBytes(a.Signature); err != nil {
		return nil, err
	}
	return a, nil
}

// VerifierRegistry is optionally implemented by a Registry that holds a Verifier for each
// registered key (registry.Registry does): Verify then checks the key with
// ValidKeyVerifier, which must answer exactly as KeyValid does, and verifies the signature
// with the returned Verifier (nil: crypto/ed25519), which must decide exactly as
// crypto/ed25519 does.
type VerifierRegistry interface {
	ValidKeyVerifier(agentID string, pub ed25519.PublicKey, at time.Time) (identity.Verifier, bool)
}

// Registry is what approval verification needs from the agent registry.
type Registry interface {
	KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool
	HasRole(agentID, role string) bool
}

// Verify checks a: it names digest, its signature verifies under its public key, that key
// is registered for the approver, who holds the approver role, and it is valid at now
// (issued no later than now+skew, not expired). Errors are approval_invalid.
func Verify(a *Approval, digest [32]byte, reg Registry, now time.Time, skew time.Duration) error {
	invalid := func(why string) error { return reason.New(reason.ApprovalInvalid, "approval "+a.ApprovalID+": "+why) }
	if a.PacketDigest != hex.EncodeToString(digest[:]) {
		return invalid("names a different packet")
	}
	if a.Decision != Approve && a.Decision != Deny {
		return invalid("decision must be approve or deny")
	}
	if a.SignatureAlgo != "Ed25519" {
		return invalid("unsupported signature_algo")
	}
	pub, err := identity.ParsePublicKeyPEM(a.PublicKey)
	if err != nil {
		return invalid("bad public key")
	}
	sig, err := packet.SignatureBytes(a.Signature)
	if err != nil {
		return invalid("signature does not verify")
	}
	// A registry that holds a verifier per key (precomputed) verifies with it; the key
	// check is the same either way.
	var ver identity.Verifier
	valid := false
	if vr, ok := reg.(VerifierRegistry); ok {
		ver, valid = vr.ValidKeyVerifier(a.Approver, pub, now)
	} else {
		valid = reg.KeyValid(a.Approver, pub, now)
	}
	ok := false
	if ver != nil {
		ok = ver.Verify(a.SigningBytes(), sig)
	} else {
		ok = ed25519.Verify(pub, a.SigningBytes(), sig)
	}
	if !ok {
		return invalid("signature does not verify")
	}
	if !valid {
		return invalid("key is not a registered, valid key of " + a.Approver)
	}
	if !reg.HasRole(a.Approver, RoleApprover) {
		return invalid(a.Approver + " does not hold the approver role")
	}
	nowUs := now.UnixMicro()
	if a.ExpiresAt.Micros <= a.IssuedAt.Micros || a.ExpiresAt.Micros-a.IssuedAt.Micros > MaxTTL.Microseconds() {
		return invalid("malformed validity window")
	}
	if a.IssuedAt.Micros > nowUs+skew.Microseconds() {
		return invalid("issued in the future")
	}
	if nowUs >= a.ExpiresAt.Micros {
		return invalid("expired")
	}
	return nil
}
