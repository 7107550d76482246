package packet

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Sign sets the packet's signature_algo, public_key and signature, signing under rule r
// (Rule04 unless you need to interoperate with a 0.3.3 verifier). from_agent must be the
// signer's agent id, or empty to have it filled in.
//
// Under rule 0.3.3 the context is first sorted by key at every level: the reference
// verifies 0.3.3 packets in wire order and the wire is sorted, so only a sorted context
// survives the round trip.
func (p *Packet) Sign(s identity.Signer, r Rule) error { return p.sign(s, r, false) }

// sign is Sign; with rotated set it keeps a from_agent other than the key's derived id (an
// agent whose key was rotated in keeps its id; the receiver's registry binds the two).
func (p *Packet) sign(s identity.Signer, r Rule, rotated bool) error {
	pub := s.Public()
	pemText := identity.PublicKeyPEM(pub)
	id := identity.AgentID(pemText)
	switch {
	case p.FromAgent == "":
		p.FromAgent = id
	case p.FromAgent != id && !rotated:
		return fmt.Errorf("packet: from_agent %q is not the signer's agent id %q", p.FromAgent, id)
	}
	if p.Context.Kind != canonical.Object {
		p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{}}
	}
	if p.MemoryRefs == nil {
		p.MemoryRefs = []string{}
	}
	if p.Permissions.AllowedActions == nil {
		p.Permissions.AllowedActions = []string{}
	}
	if r == Rule033 {
		sortKeys(&p.Context)
		if p.AIProvenance != nil {
			sortKeys(p.AIProvenance)
		}
	} else if r != Rule04 {
		return fmt.Errorf("packet: unknown signing rule %q (want %q or %q)", r, Rule04, Rule033)
	}
	p.SignatureAlgo = "Ed25519"
	p.PublicKey = pemText
	// Every string must be valid UTF-8: the ASCII encoders would silently turn a bad byte
	// into U+FFFD, and a 0.3.3 verifier would then rebuild different bytes. The raw-UTF-8
	// rule 0.3.3 encoding shows any bad byte as it is.
	raw, err := p.SigningBytes(nil, Rule033)
	if err != nil {
		return fmt.Errorf("packet: %w", err)
	}
	if !utf8.Valid(raw) {
		return errors.New("packet: a string field is not valid UTF-8")
	}
	msg := raw
	if r == Rule04 {
		if msg, err = p.SigningBytes(nil, r); err != nil {
			return fmt.Errorf("packet: %w", err)
		}
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return fmt.Errorf("packet: signing: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("packet: signer returned a %d-byte signature", len(sig))
	}
	p.Signature = base64.StdEncoding.EncodeToString(sig)
	p.wire = nil // a new signature: the bytes as received describe another packet
	return nil
}

func sortKeys(v *canonical.Value) {
	switch v.Kind {
	case canonical.Object:
		slices.SortFunc(v.Obj, func(a, b canonical.Member) int { return strings.Compare(a.Key, b.Key) })
		for i := range v.Obj {
			sortKeys(&v.Obj[i].Value)
		}
	case canonical.Array:
		for i := range v.Arr {
			sortKeys(&v.Arr[i])
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// VerifySignature reports which rule p's signature verifies under with pub, trying rule
// 0.4 first, then 0.3.3. It checks the signature only: identity binding, time and policy
// are the pipeline's job. The error is a *reason.Error (unsupported_algorithm,
// malformed_envelope or invalid_signature).
func (p *Packet) VerifySignature(pub ed25519.PublicKey) (Rule, error) {
	return p.verifySignature(pub, nil, nil)
}

// VerifySignatureWith is VerifySignature with the Verifier of pub (for instance the
// precomputed one a registry binding carries; nil means crypto/ed25519). v must verify
// for pub: the decisions are then exactly those of VerifySignature(pub).
func (p *Packet) VerifySignatureWith(pub ed25519.PublicKey, v identity.Verifier) (Rule, error) {
	return p.verifySignature(pub, v, nil)
}

// VerifySignatureDigest is VerifySignatureWith that also returns the SHA-256 of the bytes
// the signature verified (what approvals name the packet by, as approval.Digest computes
// it), hashed from the bytes just verified instead of encoding them again. The digest is
// zero when the signature does not verify.
func (p *Packet) VerifySignatureDigest(pub ed25519.PublicKey, v identity.Verifier) (Rule, [32]byte, error) {
	var digest [32]byte
	r, err := p.verifySignature(pub, v, &digest)
	return r, digest, err
}

// verifySignature tries both rules; when digest is not nil it receives the SHA-256 of the
// bytes that verified.
func (p *Packet) verifySignature(pub ed25519.PublicKey, v identity.Verifier, digest *[32]byte) (Rule, error) {
	if p.SignatureAlgo != "Ed25519" {
		return "", reason.New(reason.UnsupportedAlgorithm, fmt.Sprintf("signature_algo %q is not supported (only Ed25519)", p.SignatureAlgo))
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", reason.New(reason.MalformedEnvelope, "public key is not a 32-byte Ed25519 key")
	}
	sig, err := SignatureBytes(p.Signature)
	if err != nil {
		return "", err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for _, r := range [...]Rule{Rule04, Rule033} {
		msg, err := p.SigningBytes((*bp)[:0], r)
		if err != nil {
			return "", reason.Wrap(reason.MalformedEnvelope, "packet cannot be canonicalized", err)
		}
		*bp = msg
		if ok := v != nil && v.Verify(msg, sig) || v == nil && ed25519.Verify(pub, msg, sig); ok {
			if digest != nil {
				*digest = sha256.Sum256(msg)
			}
			return r, nil
		}
	}
	return "", reason.New(reason.InvalidSignature, "signature does not verify under rule 0.4 or 0.3.3")
}

// NewID returns a random 128-bit identifier in hex, for packet ids, task ids and nonces.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("packet: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}
