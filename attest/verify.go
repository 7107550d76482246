package attest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// Sentinel causes of verification failures. Verify returns a *reason.Error whose cause is
// one of them: test with errors.Is, read the reason code with errors.As.
var (
	// ErrKeyMismatch: the verifying key is not the attestation's key (fingerprint) or
	// signed_by is not that key's agent id. Code public_key_mismatch.
	ErrKeyMismatch = errors.New("attest: key does not match the attestation")
	// ErrSignature: the signature does not verify over the framed bytes. Code invalid_signature.
	ErrSignature = errors.New("attest: invalid signature")
	// ErrOutcomeMismatch: the attestation does not attest the expected result or reason.
	// Code invalid_signature (what was signed is not what is presented).
	ErrOutcomeMismatch = errors.New("attest: outcome does not match")
	// ErrStale: the timestamp is older than the maximum age (code expired) or ahead of the
	// verifier's clock by more than the skew (code issued_in_future).
	ErrStale = errors.New("attest: outside the freshness window")
	// ErrReplay: the (key, nonce) pair was already recorded. Code replay_detected.
	ErrReplay = errors.New("attest: nonce already used")
	// ErrStoreUnavailable: the nonce store or the revocation store failed; the attestation
	// is rejected (fail closed). Code store_unavailable.
	ErrStoreUnavailable = errors.New("attest: store unavailable")
	// ErrUnknownSigner: signed_by is not a registered agent (VerifyRegistered,
	// ResolveSigner). Code unknown_agent.
	ErrUnknownSigner = errors.New("attest: signer is not registered")
	// ErrSignerRevoked: the signer is revoked, in the revocation store (WithRevocations) or
	// in the registry. Code agent_revoked.
	ErrSignerRevoked = errors.New("attest: signer is revoked")
	// ErrUnexpectedSigner: the attestation is from another agent than the one
	// WithExpectedSigner names. Code public_key_mismatch.
	ErrUnexpectedSigner = errors.New("attest: attestation is from an unexpected signer")
)

// NonceStore records nonces for replay protection. Record atomically stores key until
// expiresAt and reports whether it was new; an error means the store cannot tell, and
// Verify then rejects. The project's replay.Store satisfies it.
type NonceStore interface {
	Record(ctx context.Context, key []byte, expiresAt time.Time) (fresh bool, err error)
}

// Defaults of the freshness window (the reference's max_age_seconds and future tolerance).
const (
	DefaultMaxAge = 300 * time.Second
	DefaultSkew   = 30 * time.Second
)

// RevocationStore answers whether an agent is revoked; the project's revocation.Store
// satisfies it. An error means the store cannot tell, and verification then rejects.
type RevocationStore interface {
	Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error)
}

type config struct {
	maxAge, skew time.Duration
	store        NonceStore
	revocations  RevocationStore
	expect       string // agent id the signer must be; "" for any
	outcome      *[32]byte
	reason       *[32]byte
	result       *canonical.Value // hashed by Verify (WithOutcome)
	reasonValue  *canonical.Value
}

// Option configures Verify and VerifyRegistered. An option given an invalid value makes
// verification fail with its error before anything is checked.
type Option func(*config) error

// WithMaxAge sets how old an attestation may be (default DefaultMaxAge; must be positive).
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("attest: max age %v must be positive", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithSkew sets how far in the future a timestamp may be (default DefaultSkew; ≥ 0).
func WithSkew(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("attest: skew %v must not be negative", d)
		}
		c.skew = d
		return nil
	}
}

// WithNonceStore enables replay protection: a verified attestation's ReplayKey is recorded
// until its timestamp + max age + skew, and a second use is rejected with ErrReplay.
func WithNonceStore(s NonceStore) Option {
	return func(c *config) error { c.store = s; return nil }
}

// WithRevocations rejects an attestation whose signer (signed_by, once bound to the key)
// is revoked in s, with ErrSignerRevoked; a failing store rejects with
// ErrStoreUnavailable (fail closed). Only an authentic attestation is looked up.
func WithRevocations(s RevocationStore) Option {
	return func(c *config) error { c.revocations = s; return nil }
}

// WithExpectedSigner binds the signer: an attestation signed by any agent other than
// agentID is rejected with ErrUnexpectedSigner, however valid it is otherwise. Use it
// when you know who was to execute (the packet's to_agent).
func WithExpectedSigner(agentID string) Option {
	return func(c *config) error {
		if agentID == "" {
			return errors.New("attest: empty expected signer")
		}
		c.expect = agentID
		return nil
	}
}

// WithOutcome makes Verify check that the attestation is about result and reason, as the
// reference's verify_attestation does: the outcome hash must equal OutcomeHash(result), and
// the reason hash must equal OutcomeHash(*reason), or be absent when reason is nil (or a
// JSON null).
func WithOutcome(result canonical.Value, reason *canonical.Value) Option {
	return func(c *config) error {
		c.result, c.reasonValue, c.outcome, c.reason = &result, reason, nil, nil
		return nil
	}
}

// WithOutcomeHash is WithOutcome for a caller that holds hashes: outcome must equal the
// outcome hash, and reason the reason hash (nil: the attestation must carry none).
func WithOutcomeHash(outcome [32]byte, reason *[32]byte) Option {
	return func(c *config) error {
		c.outcome, c.reason, c.result, c.reasonValue = &outcome, reason, nil, nil
		return nil
	}
}

// ReplayKey is the nonce store key of a: sha256(fingerprint || 16-byte nonce).
func ReplayKey(a *Attestation) [32]byte {
	var b [48]byte
	copy(b[:32], a.Fingerprint[:])
	copy(b[32:], a.Nonce[:])
	return sha256.Sum256(b[:])
}

// Verify reports, by returning nil, that a was signed by pub, is bound to pub's agent id,
// and is fresh at now. See VerifyContext.
func Verify(a *Attestation, pub ed25519.PublicKey, now time.Time, opts ...Option) error {
	return VerifyContext(context.Background(), a, pub, now, opts...)
}

// VerifyContext verifies a against pub at now, in this order, returning at the first
// failure a *reason.Error wrapping one of the sentinels:
//
//  1. key binding: agent_pubkey_fingerprint = sha256(pub) and signed_by = identity.AgentIDOf(pub)
//     (signed_by is not covered by the signature, so it is bound here) — ErrKeyMismatch;
//  2. with WithExpectedSigner, signed_by is the expected agent — ErrUnexpectedSigner;
//  3. the Ed25519 signature over FramedBytes — ErrSignature;
//  4. with WithOutcome or WithOutcomeHash, the outcome and reason hashes — ErrOutcomeMismatch;
//  5. freshness: now − max age ≤ timestamp ≤ now + skew — ErrStale;
//  6. with WithRevocations, the signer is not revoked — ErrSignerRevoked, or
//     ErrStoreUnavailable when the store fails (fail closed);
//  7. with WithNonceStore, replay: only an attestation that passed 1–6 consumes its nonce,
//     so a forger cannot burn a legitimate one — ErrReplay, or ErrStoreUnavailable when
//     the store fails (fail closed).
//
// A signer whose registered agent id is not the id derived from its key (after a key
// rotation) is verified with [VerifyRegistered]. ctx is passed to the stores.
func VerifyContext(ctx context.Context, a *Attestation, pub ed25519.PublicKey, now time.Time, opts ...Option) error {
	if len(pub) != ed25519.PublicKeySize {
		return reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("verifying key is %d bytes, not an Ed25519 public key", len(pub)), ErrKeyMismatch)
	}
	return verify(ctx, a, pub, identity.AgentIDOf(pub), now, opts)
}

// verify checks a against pub, whose agent id (derived, or registered) is signerID.
func verify(ctx context.Context, a *Attestation, pub ed25519.PublicKey, signerID string, now time.Time, opts []Option) error {
	c := config{maxAge: DefaultMaxAge, skew: DefaultSkew}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return err
		}
	}
	if a == nil {
		return malformed("no attestation")
	}
	if err := a.check(); err != nil {
		return err
	}
	if err := checkKey(a, pub, signerID); err != nil {
		return err
	}
	if c.expect != "" && a.SignedBy != c.expect {
		return reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("attestation is signed by %s, not by the expected %s", truncate(a.SignedBy), truncate(c.expect)), ErrUnexpectedSigner)
	}
	var buf [256]byte
	if !ed25519.Verify(pub, a.AppendFramed(buf[:0]), a.Signature[:]) {
		return reason.Wrap(reason.InvalidSignature, "attestation signature does not verify", ErrSignature)
	}
	if err := c.checkOutcome(a); err != nil {
		return err
	}
	if err := checkFresh(a, now, c.maxAge, c.skew); err != nil {
		return err
	}
	if c.revocations != nil {
		e, revoked, err := c.revocations.Revoked(ctx, revocation.KindAgent, a.SignedBy)
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "cannot look up the signer's revocation", fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		}
		if revoked {
			return reason.Wrap(reason.AgentRevoked, fmt.Sprintf("signer %s was revoked at %s", a.SignedBy, e.At.UTC().Format(time.RFC3339)), ErrSignerRevoked)
		}
	}
	if c.store != nil {
		key := ReplayKey(a)
		fresh, err := c.store.Record(ctx, key[:], a.Time().Add(c.maxAge+c.skew))
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "cannot record the attestation nonce", fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		}
		if !fresh {
			return reason.Wrap(reason.ReplayDetected, "attestation nonce was already used", ErrReplay)
		}
	}
	return nil
}

func checkKey(a *Attestation, pub ed25519.PublicKey, signerID string) error {
	if identity.Fingerprint(pub) != a.Fingerprint {
		return reason.Wrap(reason.PublicKeyMismatch, "agent_pubkey_fingerprint is not the fingerprint of the verifying key", ErrKeyMismatch)
	}
	if a.SignedBy != signerID {
		return reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("signed_by %q is not the verifying key's agent id %s", truncate(a.SignedBy), signerID), ErrKeyMismatch)
	}
	return nil
}

func (c *config) checkOutcome(a *Attestation) error {
	outcome, why := c.outcome, c.reason
	if c.result != nil {
		h, err := OutcomeHash(*c.result)
		if err != nil {
			return err
		}
		outcome = &h
		if c.reasonValue != nil && c.reasonValue.Kind != canonical.Null {
			r, err := OutcomeHash(*c.reasonValue)
			if err != nil {
				return err
			}
			why = &r
		}
	}
	if outcome == nil {
		return nil
	}
	if *outcome != a.OutcomeHash {
		return reason.Wrap(reason.InvalidSignature, "outcome_hash does not match the result", ErrOutcomeMismatch)
	}
	switch {
	case why == nil && a.ReasonHash != nil:
		return reason.Wrap(reason.InvalidSignature, "attestation carries a reason_hash but no reason was expected", ErrOutcomeMismatch)
	case why != nil && a.ReasonHash == nil:
		return reason.Wrap(reason.InvalidSignature, "attestation carries no reason_hash but a reason was expected", ErrOutcomeMismatch)
	case why != nil && *why != *a.ReasonHash:
		return reason.Wrap(reason.InvalidSignature, "reason_hash does not match the reason", ErrOutcomeMismatch)
	}
	return nil
}

// checkFresh compares in milliseconds, as the reference does. Differences are taken in
// uint64, where they cannot overflow for any two int64 instants.
func checkFresh(a *Attestation, now time.Time, maxAge, skew time.Duration) error {
	nowMS, ts := now.UnixMilli(), a.TimestampMS
	switch {
	case ts > nowMS && uint64(ts)-uint64(nowMS) > uint64(skew.Milliseconds()):
		return reason.Wrap(reason.IssuedInFuture, fmt.Sprintf("attestation timestamp is %d ms ahead of the verifier's clock (skew %v)",
			uint64(ts)-uint64(nowMS), skew), ErrStale)
	case nowMS > ts && uint64(nowMS)-uint64(ts) > uint64(maxAge.Milliseconds()):
		return reason.Wrap(reason.Expired, fmt.Sprintf("attestation is older than %v", maxAge), ErrStale)
	}
	return nil
}
