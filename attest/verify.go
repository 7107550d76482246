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
	// ErrStoreUnavailable: the nonce store failed; the attestation is rejected (fail
	// closed). Code store_unavailable.
	ErrStoreUnavailable = errors.New("attest: nonce store unavailable")
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

type config struct {
	maxAge, skew time.Duration
	store        NonceStore
	outcome      *[32]byte
	reason       *[32]byte
	result       *canonical.Value // hashed by Verify (WithOutcome)
	reasonValue  *canonical.Value
}

// Option configures Verify.
type Option func(*config)

// WithMaxAge sets how old an attestation may be (default DefaultMaxAge; must be positive).
func WithMaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// WithSkew sets how far in the future a timestamp may be (default DefaultSkew; ≥ 0).
func WithSkew(d time.Duration) Option { return func(c *config) { c.skew = d } }

// WithNonceStore enables replay protection: a verified attestation's ReplayKey is recorded
// until its timestamp + max age + skew, and a second use is rejected with ErrReplay.
func WithNonceStore(s NonceStore) Option { return func(c *config) { c.store = s } }

// WithOutcome makes Verify check that the attestation is about result and reason, as the
// reference's verify_attestation does: the outcome hash must equal OutcomeHash(result), and
// the reason hash must equal OutcomeHash(*reason), or be absent when reason is nil (or a
// JSON null).
func WithOutcome(result canonical.Value, reason *canonical.Value) Option {
	return func(c *config) { c.result, c.reasonValue, c.outcome, c.reason = &result, reason, nil, nil }
}

// WithOutcomeHash is WithOutcome for a caller that holds hashes: outcome must equal the
// outcome hash, and reason the reason hash (nil: the attestation must carry none).
func WithOutcomeHash(outcome [32]byte, reason *[32]byte) Option {
	return func(c *config) { c.outcome, c.reason, c.result, c.reasonValue = &outcome, reason, nil, nil }
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
//  2. the Ed25519 signature over FramedBytes — ErrSignature;
//  3. with WithOutcome or WithOutcomeHash, the outcome and reason hashes — ErrOutcomeMismatch;
//  4. freshness: now − max age ≤ timestamp ≤ now + skew — ErrStale;
//  5. with WithNonceStore, replay: only an attestation that passed 1–4 consumes its nonce,
//     so a forger cannot burn a legitimate one — ErrReplay, or ErrStoreUnavailable when
//     the store fails (fail closed).
//
// ctx is passed to the nonce store.
func VerifyContext(ctx context.Context, a *Attestation, pub ed25519.PublicKey, now time.Time, opts ...Option) error {
	c := config{maxAge: DefaultMaxAge, skew: DefaultSkew}
	for _, o := range opts {
		o(&c)
	}
	if c.maxAge <= 0 || c.skew < 0 {
		return fmt.Errorf("attest: invalid options: max age %v must be positive and skew %v not negative", c.maxAge, c.skew)
	}
	if a == nil {
		return malformed("no attestation")
	}
	if err := a.check(); err != nil {
		return err
	}
	if err := checkKey(a, pub); err != nil {
		return err
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

func checkKey(a *Attestation, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("verifying key is %d bytes, not an Ed25519 public key", len(pub)), ErrKeyMismatch)
	}
	if identity.Fingerprint(pub) != a.Fingerprint {
		return reason.Wrap(reason.PublicKeyMismatch, "agent_pubkey_fingerprint is not the fingerprint of the verifying key", ErrKeyMismatch)
	}
	if id := identity.AgentIDOf(pub); a.SignedBy != id {
		return reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("signed_by %q is not the verifying key's agent id %s", truncate(a.SignedBy), id), ErrKeyMismatch)
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
