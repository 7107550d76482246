package receipt

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// Registry is what receipt verification needs from the agent registry (*registry.Registry).
type Registry interface {
	Resolve(agentID, publicKeyPEM string, at time.Time) (registry.Binding, error)
}

var _ Registry = (*registry.Registry)(nil)

// ReplayStore records receipt nonces (a replay.Store). A store that also implements
// replay.Peeker lets a dry run report replays without recording.
type ReplayStore interface {
	Record(ctx context.Context, key []byte, expiresAt time.Time) (fresh bool, err error)
}

// RevocationStore answers whether the executor is revoked (a revocation.Store).
type RevocationStore interface {
	Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error)
}

// Time defaults and limits.
const (
	// DefaultMaxAge is how long after finished_at a receipt is accepted.
	DefaultMaxAge = 300 * time.Second
	// MaxMaxAge bounds WithMaxAge.
	MaxMaxAge = time.Hour
	// NonceRetention is how long past finished_at a nonce is remembered: the largest
	// maximum age plus the largest skew, whatever this verifier's own settings, because
	// verifiers with other settings may share the store.
	NonceRetention = MaxMaxAge + packet.MaxSkew
)

// Verifier verifies receipts. It is safe for concurrent use.
type Verifier struct {
	reg         Registry
	replay      ReplayStore
	revocations RevocationStore
	sink        audit.Sink
	producer    string
	now         func() time.Time
	skew, grace time.Duration
	maxAge      time.Duration
}

// Option configures a Verifier.
type Option func(*Verifier) error

// WithReplay enables replay protection: an accepted receipt records its (key, nonce) and a
// second one is rejected with replay_detected. A failing store rejects (fail closed).
func WithReplay(s ReplayStore) Option {
	return func(v *Verifier) error { v.replay = s; return nil }
}

// WithRevocations rejects receipts whose executor is revoked in s (agent_revoked), and
// every receipt while s cannot answer (store_unavailable).
func WithRevocations(s RevocationStore) Option {
	return func(v *Verifier) error { v.revocations = s; return nil }
}

// WithAudit records a receipt_accepted or receipt_rejected event for every receipt that
// parsed. An accepted receipt whose event cannot be recorded is rejected with
// store_unavailable (fail closed).
func WithAudit(sink audit.Sink, producerID string) Option {
	return func(v *Verifier) error {
		if sink == nil {
			return errors.New("receipt: nil audit sink")
		}
		v.sink, v.producer = sink, producerID
		return nil
	}
}

// WithClock sets the verifier's clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("receipt: nil clock")
		}
		v.now = now
		return nil
	}
}

// WithSkew sets the clock difference tolerated between the sender, the executor and the
// verifier (default packet.DefaultSkew, at most packet.MaxSkew): execution may start that
// much before the packet's issued_at, and finish that much after the verifier's now.
func WithSkew(d time.Duration) Option {
	return func(v *Verifier) error {
		if d < 0 || d > packet.MaxSkew {
			return fmt.Errorf("receipt: skew %v outside [0, %v]", d, packet.MaxSkew)
		}
		v.skew = d
		return nil
	}
}

// WithGrace sets how long past the packet's expires_at execution may finish (default 0,
// at most packet.MaxGrace): the grace the executor's gate ran the handoff under.
func WithGrace(d time.Duration) Option {
	return func(v *Verifier) error {
		if d < 0 || d > packet.MaxGrace {
			return fmt.Errorf("receipt: grace %v outside [0, %v]", d, packet.MaxGrace)
		}
		v.grace = d
		return nil
	}
}

// WithMaxAge sets how long after finished_at a receipt is accepted (default
// DefaultMaxAge, in (0, MaxMaxAge]).
func WithMaxAge(d time.Duration) Option {
	return func(v *Verifier) error {
		if d <= 0 || d > MaxMaxAge {
			return fmt.Errorf("receipt: max age %v outside (0, %v]", d, MaxMaxAge)
		}
		v.maxAge = d
		return nil
	}
}

// NewVerifier returns a Verifier over the agent registry reg (required).
func NewVerifier(reg Registry, opts ...Option) (*Verifier, error) {
	if reg == nil {
		return nil, errors.New("receipt: a registry is required")
	}
	v := &Verifier{reg: reg, sink: audit.Discard(), now: time.Now, skew: packet.DefaultSkew, maxAge: DefaultMaxAge}
	for _, o := range opts {
		if err := o(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// DependencyResolver finds a depends_on receipt by its digest, with the envelope of the
// packet it answers; ok is false when it has none.
type DependencyResolver func(digest [32]byte) (r *Receipt, env *packet.Envelope, ok bool)

// VerifyOptions are the settings of one verification.
type VerifyOptions struct {
	// At verifies as of this instant; zero: the verifier's clock.
	At time.Time
	// Outcome, when not nil, must be the outcome the receipt hashes; Reason must then be
	// the reason it hashes (nil: the receipt must carry no reason).
	Outcome, Reason []byte
	// Dependencies resolves depends_on; required when the receipt depends on any.
	Dependencies DependencyResolver
	// DryRun checks everything and reports replay_detected when the nonce was already
	// used (if the store can tell without recording), but records no nonce. With
	// WithAudit its event is still emitted, marked "dry_run": true, as the verify
	// pipeline's dry runs are.
	DryRun bool
}

// maxDependencyDepth bounds the recursion through depends_on (digests make cycles
// impossible; this bounds the work a hostile resolver can cause).
const maxDependencyDepth = 32

// Verify reports, by returning nil, that r is a valid receipt of the packet in env. It
// checks, in this order, returning at the first failure a *reason.Error wrapping one of
// the sentinels of this package:
//
//  1. r and env are well-formed — ErrMalformed;
//  2. r names env's packet: packet_id, and packet_digest under either signing rule —
//     ErrPacketMismatch;
//  3. the executor is the packet's to_agent — ErrWrongExecutor;
//  4. public_key is a registered key of the executor, valid at the verification time,
//     and the registry has not revoked the executor — ErrExecutorKey;
//  5. the Ed25519 signature over SigningBytes, by the key's registered verifier —
//     ErrSignature;
//  6. execution lies inside the packet's validity: issued_at − skew ≤ started_at ≤
//     finished_at ≤ expires_at + grace (+ skew for a TIMEOUT receipt, whose task was cut
//     off at the deadline and took a moment to return) — ErrOutsideValidity;
//  7. freshness: finished_at ≤ now + skew, and now − finished_at ≤ max age — ErrStale;
//  8. with opt.Outcome, the outcome and reason hashes — ErrOutcomeMismatch;
//  9. with WithRevocations, the executor is not revoked — ErrRevoked, or
//     ErrStoreUnavailable when the store fails;
//  10. every depends_on receipt, resolved by opt.Dependencies, passes 1–6 and 9 at its
//     own finished_at (it was checked for freshness and replay when it arrived) —
//     ErrDependency, with a *DependencyError naming it;
//  11. with WithReplay, the nonce is fresh; only a receipt that passed 1–10 consumes it,
//     so a forged copy cannot burn a legitimate one — ErrReplay, or ErrStoreUnavailable;
//  12. with WithAudit, the receipt_accepted event is recorded — ErrStoreUnavailable.
//
// Verify does not verify the packet's own signature or authority: bind the receipt to a
// packet the verify pipeline accepted (or verifies in a dry run).
func (v *Verifier) Verify(ctx context.Context, r *Receipt, env *packet.Envelope, opt VerifyOptions) error {
	at := opt.At
	if at.IsZero() {
		at = v.now()
	}
	err := v.verify(ctx, r, env, opt, at, 0)
	if err == nil {
		err = v.checkReplay(ctx, r, opt.DryRun)
	}
	if v.sink != audit.Discard() && r != nil && r.check() == nil {
		if aerr := v.emit(ctx, r, err, at, opt.DryRun); aerr != nil && err == nil {
			err = reason.Wrap(reason.StoreUnavailable, "receipt: cannot record the audit event", fmt.Errorf("%w: %w", ErrStoreUnavailable, aerr))
		}
	}
	return err
}

// verify runs steps 1–10; depth counts the depends_on levels above r (0: the receipt
// being verified, which alone is checked for freshness).
func (v *Verifier) verify(ctx context.Context, r *Receipt, env *packet.Envelope, opt VerifyOptions, at time.Time, depth int) error {
	if err := r.check(); err != nil {
		return err
	}
	if env == nil || env.Packet == nil {
		return malformed("no packet to verify the receipt against")
	}
	p := env.Packet
	if err := checkPacket(r, p); err != nil {
		return err
	}
	if r.Executor != p.ToAgent {
		return reason.Wrap(reason.WrongExecutor, fmt.Sprintf("receipt executor %s is not the packet's to_agent %s", r.Executor, truncate(p.ToAgent)), ErrWrongExecutor)
	}
	b, err := v.reg.Resolve(r.Executor, r.PublicKey, at)
	if err != nil {
		return reason.Wrap(reason.Of(err, reason.PublicKeyMismatch), "receipt executor key", fmt.Errorf("%w: %w", ErrExecutorKey, err))
	}
	if err := checkSignature(r, b); err != nil {
		return err
	}
	if err := v.checkWindow(r, p); err != nil {
		return err
	}
	if depth == 0 {
		if err := v.checkFresh(r, at); err != nil {
			return err
		}
		if err := checkOutcome(r, opt); err != nil {
			return err
		}
	}
	if v.revocations != nil {
		e, revoked, err := v.revocations.Revoked(ctx, revocation.KindAgent, r.Executor)
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "receipt: cannot look up the executor's revocation", fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		}
		if revoked {
			return reason.Wrap(reason.AgentRevoked, fmt.Sprintf("receipt executor %s was revoked at %s", r.Executor, e.At.UTC().Format(time.RFC3339)), ErrRevoked)
		}
	}
	return v.checkDependencies(ctx, r, opt, depth)
}

func checkPacket(r *Receipt, p *packet.Packet) error {
	if r.PacketID != p.PacketID {
		return reason.Wrap(reason.ReceiptPacketMismatch, "receipt packet_id is not the packet's", ErrPacketMismatch)
	}
	var buf [2048]byte
	for _, rule := range [...]packet.Rule{packet.Rule04, packet.Rule033} {
		msg, err := p.SigningBytes(buf[:0], rule)
		if err != nil {
			continue // a packet that cannot be written under a rule was not signed under it
		}
		if sha256.Sum256(msg) == r.PacketDigest {
			return nil
		}
	}
	return reason.Wrap(reason.ReceiptPacketMismatch, "receipt packet_digest is not the digest of the packet's signed bytes", ErrPacketMismatch)
}

func checkSignature(r *Receipt, b registry.Binding) error {
	var buf [1536]byte
	msg := r.appendSigning(buf[:0])
	var ok bool
	if b.Verifier != nil {
		ok = b.Verifier.Verify(msg, r.Signature[:])
	} else {
		pub := b.PublicKey
		if len(pub) != ed25519.PublicKeySize {
			var err error
			if pub, err = r.publicKey(); err != nil {
				return reason.Wrap(reason.PublicKeyMismatch, "receipt public_key", fmt.Errorf("%w: %w", ErrExecutorKey, err))
			}
		}
		ok = identity.Verify(pub, msg, r.Signature[:])
	}
	if !ok {
		return reason.Wrap(reason.InvalidSignature, "receipt signature does not verify", ErrSignature)
	}
	return nil
}

func (v *Verifier) checkWindow(r *Receipt, p *packet.Packet) error {
	issued, expires := p.IssuedAt.Time(), p.ExpiresAt.Time()
	end := expires.Add(v.grace)
	if r.Status == StatusTimeout {
		// Execution was cut off at the deadline; finished_at is when the task returned,
		// which takes it a moment after its context is cancelled (see Run).
		end = end.Add(v.skew)
	}
	switch {
	case r.StartedAt.Before(issued.Add(-v.skew)):
		return reason.Wrap(reason.ExecutionOutsideValidity, fmt.Sprintf("execution started at %s, before the packet was issued at %s",
			formatTime(r.StartedAt), formatTime(issued)), ErrOutsideValidity)
	case r.FinishedAt.After(end):
		return reason.Wrap(reason.ExecutionOutsideValidity, fmt.Sprintf("execution finished at %s, after the packet expired at %s",
			formatTime(r.FinishedAt), formatTime(expires)), ErrOutsideValidity)
	case r.FinishedAt.Before(r.StartedAt):
		return reason.Wrap(reason.ExecutionOutsideValidity, "execution finished before it started", ErrOutsideValidity)
	}
	return nil
}

func (v *Verifier) checkFresh(r *Receipt, now time.Time) error {
	switch {
	case r.FinishedAt.Sub(now) > v.skew:
		return reason.Wrap(reason.IssuedInFuture, fmt.Sprintf("receipt finished_at is %v ahead of the verifier's clock (skew %v)",
			r.FinishedAt.Sub(now).Round(time.Millisecond), v.skew), ErrStale)
	case now.Sub(r.FinishedAt) > v.maxAge:
		return reason.Wrap(reason.Expired, fmt.Sprintf("receipt is older than %v", v.maxAge), ErrStale)
	}
	return nil
}

func checkOutcome(r *Receipt, opt VerifyOptions) error {
	if opt.Outcome == nil {
		return nil
	}
	if HashBytes(opt.Outcome) != r.OutcomeHash {
		return reason.Wrap(reason.OutcomeMismatch, "outcome_hash does not match the outcome", ErrOutcomeMismatch)
	}
	switch {
	case opt.Reason == nil && r.ReasonHash != nil:
		return reason.Wrap(reason.OutcomeMismatch, "receipt carries a reason_hash but no reason was given", ErrOutcomeMismatch)
	case opt.Reason != nil && r.ReasonHash == nil:
		return reason.Wrap(reason.OutcomeMismatch, "receipt carries no reason_hash but a reason was given", ErrOutcomeMismatch)
	case opt.Reason != nil && HashBytes(opt.Reason) != *r.ReasonHash:
		return reason.Wrap(reason.OutcomeMismatch, "reason_hash does not match the reason", ErrOutcomeMismatch)
	}
	return nil
}

func (v *Verifier) checkDependencies(ctx context.Context, r *Receipt, opt VerifyOptions, depth int) error {
	if len(r.DependsOn) == 0 {
		return nil
	}
	fail := func(d [32]byte, err error) error {
		return reason.Wrap(reason.DependencyInvalid, "receipt depends on "+hex.EncodeToString(d[:]), fmt.Errorf("%w: %w", ErrDependency, &DependencyError{Digest: d, Err: err}))
	}
	if depth+1 > maxDependencyDepth {
		return fail(r.DependsOn[0], fmt.Errorf("dependencies nest deeper than %d", maxDependencyDepth))
	}
	if opt.Dependencies == nil {
		return fail(r.DependsOn[0], errors.New("no dependency resolver to find it"))
	}
	for _, d := range r.DependsOn {
		dep, env, ok := opt.Dependencies(d)
		if !ok || dep == nil {
			return fail(d, errors.New("not found"))
		}
		got, err := dep.Digest()
		if err != nil {
			return fail(d, err)
		}
		if got != d {
			return fail(d, errors.New("the resolver returned a receipt with another digest"))
		}
		if err := v.verify(ctx, dep, env, opt, dep.FinishedAt, depth+1); err != nil {
			return fail(d, err)
		}
		if dep.FinishedAt.After(r.StartedAt.Add(v.skew)) {
			return fail(d, reason.Wrap(reason.ExecutionOutsideValidity, "the dependency finished after this execution started", ErrOutsideValidity))
		}
	}
	return nil
}

// ReplayKey is the replay store key of r: sha256 of a domain separator, the executor key
// and the nonce, so receipt nonces never collide with packet or attestation nonces.
func ReplayKey(r *Receipt) ([]byte, error) {
	pub, err := r.publicKey()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(Version + " nonce\x00"))
	h.Write(pub)
	h.Write(r.Nonce[:])
	return h.Sum(nil), nil
}

func (v *Verifier) checkReplay(ctx context.Context, r *Receipt, dryRun bool) error {
	if v.replay == nil {
		return nil
	}
	key, err := ReplayKey(r)
	if err != nil {
		return reason.Wrap(reason.PublicKeyMismatch, "receipt public_key", fmt.Errorf("%w: %w", ErrExecutorKey, err))
	}
	var fresh bool
	if dryRun {
		pk, ok := v.replay.(replay.Peeker)
		if !ok {
			return nil
		}
		seen, err := pk.Seen(ctx, key)
		fresh = !seen
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "receipt: cannot look up the nonce", fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		}
	} else {
		fresh, err = v.replay.Record(ctx, key, r.FinishedAt.Add(NonceRetention))
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "receipt: cannot record the nonce", fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
		}
	}
	if !fresh {
		return reason.Wrap(reason.ReplayDetected, "receipt nonce was already used", ErrReplay)
	}
	return nil
}

func (v *Verifier) emit(ctx context.Context, r *Receipt, verr error, now time.Time, dryRun bool) error {
	if v.sink == audit.Discard() {
		return nil
	}
	typ, code, detail := audit.ReceiptAccepted, reason.OK, ""
	if verr != nil {
		typ, code, detail = audit.ReceiptRejected, reason.Of(verr, reason.MalformedEnvelope), verr.Error()
	}
	digest, _ := r.Digest() // r.check passed: cannot fail
	deps := make([]string, len(r.DependsOn))
	for i := range r.DependsOn {
		deps[i] = hex.EncodeToString(r.DependsOn[i][:])
	}
	nonce := hex.EncodeToString(r.Nonce[:])
	ev := audit.Event{
		EventID: packet.NewID(), EventType: typ, Timestamp: now.UTC(), ProducerID: v.producer,
		CorrelationID: r.PacketID, IdempotencyKey: typ + ":" + r.ReceiptID + ":" + nonce + ":" + string(code),
		Payload: map[string]any{
			"receipt_id": r.ReceiptID, "receipt_digest": hex.EncodeToString(digest[:]),
			"packet_id": r.PacketID, "packet_digest": hex.EncodeToString(r.PacketDigest[:]),
			"executor": r.Executor, "status": string(r.Status), "nonce": nonce,
			"started_at": formatTime(r.StartedAt), "finished_at": formatTime(r.FinishedAt),
			"depends_on": deps, "reason": string(code), "detail": detail,
		},
	}
	if dryRun {
		ev.Payload["dry_run"] = true
		ev.IdempotencyKey += ":dry_run"
	}
	return v.sink.Emit(ctx, ev)
}
