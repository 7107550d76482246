package receipt

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Params is what the executor states in a receipt.
type Params struct {
	Status  Status
	Outcome []byte // the result bytes; outcome_hash is their sha256
	// Reason, when not nil, explains the status (an error, a refusal); reason_hash is its
	// sha256. Nil gives reason_hash null.
	Reason     []byte
	StartedAt  time.Time // truncated to microseconds, stored in UTC
	FinishedAt time.Time // idem; not before StartedAt
	// DependsOn lists the digests (Receipt.Digest) of the receipts whose results this
	// execution used.
	DependsOn [][32]byte
	// Rand is the source of the receipt id and nonce; nil means crypto/rand.
	Rand io.Reader
}

// Sign makes the receipt of executing pkt, whose signature verified under rule, signed by
// s as executor. executor is the signer's agent id ("" means pkt.ToAgent, the only agent
// a receipt of pkt may come from); an agent whose key was rotated keeps its id and signs
// with its new key. The signer is checked, not trusted: a public key that is not a usable
// Ed25519 key (ErrExecutorKey) or a signature that does not verify under it
// (ErrSignature) is an error.
func Sign(s identity.Signer, executor string, pkt *packet.Packet, rule packet.Rule, p Params) (*Receipt, error) {
	if pkt == nil {
		return nil, errors.New("receipt: no packet")
	}
	digest, err := approval.Digest(pkt, rule)
	if err != nil {
		return nil, fmt.Errorf("receipt: packet digest: %w", err)
	}
	return sign(s, executor, pkt, digest, p)
}

// SignDecision is Sign for a handoff the verify pipeline decided on (accepted, or
// rejected after its packet parsed): the packet and digest come from d.
func SignDecision(s identity.Signer, executor string, d *verify.Decision, p Params) (*Receipt, error) {
	if d == nil || d.Envelope == nil || d.Envelope.Packet == nil {
		return nil, errors.New("receipt: the decision carries no packet")
	}
	digest := d.Digest
	if digest == ([32]byte{}) {
		// A packet rejected before its signature was checked has no digest yet: compute it
		// under the rule the signer uses by default.
		var err error
		if digest, err = approval.Digest(d.Envelope.Packet, packet.Rule04); err != nil {
			return nil, fmt.Errorf("receipt: packet digest: %w", err)
		}
	}
	return sign(s, executor, d.Envelope.Packet, digest, p)
}

func sign(s identity.Signer, executor string, pkt *packet.Packet, digest [32]byte, p Params) (*Receipt, error) {
	if s == nil {
		return nil, errors.New("receipt: no signer")
	}
	if executor == "" {
		executor = pkt.ToAgent
	}
	if executor != pkt.ToAgent {
		return nil, fmt.Errorf("%w: %s signs a receipt for a packet addressed to %s", ErrWrongExecutor, truncate(executor), truncate(pkt.ToAgent))
	}
	if p.FinishedAt.IsZero() || p.StartedAt.IsZero() {
		return nil, errors.New("receipt: started and finished times are required")
	}
	pub := s.Public()
	if err := identity.CheckPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: the signer's public key: %w", ErrExecutorKey, err)
	}
	src := p.Rand
	if src == nil {
		src = rand.Reader
	}
	var rnd [32]byte
	if _, err := io.ReadFull(src, rnd[:]); err != nil {
		return nil, fmt.Errorf("receipt: random: %w", err)
	}
	r := &Receipt{
		Version:      Version,
		ReceiptID:    fmt.Sprintf("%x", rnd[:16]),
		PacketDigest: digest,
		PacketID:     pkt.PacketID,
		Executor:     executor,
		Status:       p.Status,
		OutcomeHash:  HashBytes(p.Outcome),
		StartedAt:    p.StartedAt.UTC().Truncate(time.Microsecond),
		FinishedAt:   p.FinishedAt.UTC().Truncate(time.Microsecond),
		DependsOn:    append([][32]byte(nil), p.DependsOn...),
		PublicKey:    identity.PublicKeyPEM(pub),
	}
	copy(r.Nonce[:], rnd[16:])
	if r.DependsOn == nil {
		r.DependsOn = [][32]byte{}
	}
	if p.Reason != nil {
		h := HashBytes(p.Reason)
		r.ReasonHash = &h
	}
	msg, err := r.SigningBytes()
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("receipt: signing: %w", err)
	}
	// A remote signer (another process, a KMS) is checked rather than trusted, as
	// attest.Create checks it: a receipt that does not verify would only surface later,
	// at its verifier, as an apparent forgery.
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("%w: the signer returned a signature that does not verify under its public key", ErrSignature)
	}
	copy(r.Signature[:], sig)
	return r, nil
}
