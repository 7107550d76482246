// Package gate runs accepted handoffs: it is the blocking human gate and the runtime
// revalidation in front of the [verify] pipeline (spec/protocol.md, "Execution gate and
// runtime revalidation").
//
// [Gate.Execute] verifies an envelope and, when the pipeline asks for human review, waits
// (blocking, until the caller's context ends) for signed approvals delivered by
// [Gate.Submit], re-verifying the envelope with the collected approvals on each arrival.
// Once the handoff is accepted it runs the caller's function under a context that is
// cancelled the moment the handoff stops being valid: the packet or any capability of its
// chain expires, a capability of the chain or the agent that issued it is revoked, or the
// sender is revoked. Revocations are pushed by the revocation store's Watch stream, never
// polled; a lost stream cancels with store_unavailable, because a gate that can no longer
// hear revocations cannot vouch for the handoff (fail closed). A gate keeps one stream for
// all its running handoffs, and checks that the store can still answer while it has any
// (see [WithLivenessProbe]): a shared store may keep the stream open through an outage.
//
// The gate has no clock or time policy of its own: it reads the time from the verifier
// ([verify.Verifier.Now]) and keeps a packet running exactly as long past its expires_at
// as the verifier accepts it (the Grace of [verify.Verifier.TimePolicy]). It re-verifies a
// parsed envelope as parsed (with the approvals collected so far), never re-encoding it,
// so the signed bytes the verifier checks are the ones that arrived.
//
// The cancellation cause is a *reason.Error carrying the stable reason code (expired,
// capability_expired, capability_revoked, agent_revoked, store_unavailable); read it with
// [Cause] or context.Cause.
package gate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

var (
	// ErrRejected is wrapped by the error of Execute when the handoff was not accepted, so
	// fn never ran. The error also wraps the decision's *reason.Error (or, when the wait for
	// approvals ended with the caller's context, the context's error).
	ErrRejected = errors.New("gate: handoff rejected")
	// ErrInvalidated is wrapped by the error of Execute when an accepted handoff stopped
	// being valid before or while fn ran. The error also wraps the cause, a *reason.Error.
	ErrInvalidated = errors.New("gate: handoff invalidated")
	// ErrNotPending is returned by Submit when no handoff waits for the approval's packet.
	ErrNotPending = errors.New("gate: no handoff waits for this packet")
)

// Gate verifies handoffs, holds those that wait for human approval, and runs accepted
// ones under runtime revalidation. It is safe for concurrent use.
type Gate struct {
	v           *verify.Verifier
	revocations revocation.Store
	wait        time.Duration // longest wait for approvals; negative: until ctx ends or the packet expires

	watch watcher // one shared subscription to the revocation stream

	mu      sync.Mutex
	waiting map[string][]*waiter // by packet digest (hex)
}

// Option configures a Gate.
type Option func(*Gate) error

// WithApprovalWait bounds how long a handoff waits in Execute for approvals (default: until
// ctx ends or the packet expires). Zero means not at all: a handoff that needs approval and
// lacks it is rejected at once with human_review_required, as the plain pipeline does.
func WithApprovalWait(d time.Duration) Option {
	return func(g *Gate) error {
		if d < 0 {
			return errors.New("gate: negative approval wait")
		}
		g.wait = d
		return nil
	}
}

// DefaultLivenessProbe is the default interval of the liveness probe (WithLivenessProbe).
const DefaultLivenessProbe = 250 * time.Millisecond

// WithLivenessProbe sets how often the gate checks, while handoffs hold its revocation
// subscription, that the store can still answer (default DefaultLivenessProbe; 0 turns
// the probe off). A store whose push subscription is down may keep Watch channels open and
// report the outage only by failing Revoked (store/redis does: it resyncs and delivers
// what was missed once it is back); the probe turns such an outage into store_unavailable
// within one interval. Revocations themselves are always pushed, never polled.
func WithLivenessProbe(interval time.Duration) Option {
	return func(g *Gate) error {
		if interval < 0 {
			return errors.New("gate: negative liveness probe interval")
		}
		g.watch.probe = interval
		return nil
	}
}

// New returns a gate in front of v that learns revocations from revocations. Give v the
// same store (verify.WithRevocations): the gate watches the store while a handoff runs,
// the verifier checks it when the handoff arrives. Both arguments are required. The gate
// uses v's clock and grace (see the package doc).
func New(v *verify.Verifier, revocations revocation.Store, opts ...Option) (*Gate, error) {
	if v == nil || revocations == nil || reflect.ValueOf(revocations).Kind() == reflect.Pointer && reflect.ValueOf(revocations).IsNil() {
		return nil, errors.New("gate: New needs a verifier and a revocation store")
	}
	g := &Gate{v: v, revocations: revocations, wait: -1, waiting: map[string][]*waiter{}}
	g.watch.store, g.watch.probe = revocations, DefaultLivenessProbe
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("gate: nil option")
		}
		if err := o(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Execute verifies envelope and runs fn if the handoff is accepted.
//
// A handoff rejected with human_review_required waits, blocking, for signed approvals
// delivered by Submit, until it is accepted or rejected for another reason (a valid deny
// rejects with policy_denied), its packet expires, or ctx ends; Pending lists it meanwhile.
// Any other rejection returns at once. A rejected handoff returns its decision and an
// error wrapping ErrRejected, and fn is not called.
//
// fn runs under a context derived from ctx that the gate cancels the moment the handoff
// stops being valid (see the package doc), with a *reason.Error as the cause. Execute
// returns fn's error; when the gate cancelled fn's context, the error wraps ErrInvalidated
// and the cause as well, even if fn returned nil, so that a caller never commits the
// result of work whose authority lapsed. A handoff found invalid between its acceptance and
// the call is not run at all.
func (g *Gate) Execute(ctx context.Context, envelope []byte, fn func(ctx context.Context, h *verify.Decision) error) (*verify.Decision, error) {
	if fn == nil {
		return nil, errors.New("gate: Execute with a nil fn")
	}
	// Subscribe before the verification that may accept the handoff: the stream is live
	// before the re-check that follows acceptance, so no revocation falls between the two;
	// and a store that cannot push revocations rejects before the nonce is consumed.
	sub, err := g.watch.acquire()
	if err != nil {
		d := storeUnavailable(err)
		return d, rejected(d)
	}
	defer func() { g.watch.release(sub) }()
	d := g.verify(ctx, envelope, nil)
	if d.Reason == reason.HumanReviewRequired && d.Envelope != nil && g.wait != 0 {
		if d, err = g.await(ctx, d); err != nil {
			return d, err
		}
	}
	if !d.Accepted() {
		return d, rejected(d)
	}
	return d, g.run(ctx, &sub, d, fn)
}

// run executes fn under revalidation. *sub is the subscription acquired before the
// verification; run may replace it (the caller releases whichever it holds).
func (g *Gate) run(ctx context.Context, sub **subscription, d *verify.Decision, fn func(context.Context, *verify.Decision) error) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fire := func(cause error) { cancel(cause) }

	guards := guardsOf(d)
	unarm, ok := (*sub).arm(guards, fire)
	if !ok {
		// The stream was lost while the handoff was verified or waited: subscribe again.
		// The re-check below covers whatever was revoked in between.
		g.watch.release(*sub)
		*sub = nil
		next, err := g.watch.acquire()
		if err != nil {
			fire(reason.Wrap(reason.StoreUnavailable, "revocation store cannot push revocations", err))
		} else {
			*sub = next
			if unarm, ok = next.arm(guards, fire); !ok {
				fire(errLost) // lost again already
			}
		}
	}
	defer unarm()
	if err := g.checkRevoked(ctx, guards); err != nil {
		fire(err)
	}
	exp := g.expiry(d)
	if wait := exp.at.Sub(g.now()); wait <= 0 {
		fire(exp.err())
	} else {
		t := time.AfterFunc(wait, func() { fire(exp.err()) })
		defer t.Stop()
	}

	if runCtx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrInvalidated, context.Cause(runCtx))
	}
	err := fn(runCtx, d)
	// The gate cancelled fn's context when runCtx has a cause that is not ctx's.
	if runCtx.Err() == nil {
		return err
	}
	cause := context.Cause(runCtx)
	if cause == context.Cause(ctx) {
		return err
	}
	switch {
	case err == nil:
		return fmt.Errorf("%w: %w", ErrInvalidated, cause)
	case errors.Is(err, cause):
		return fmt.Errorf("%w: %w", ErrInvalidated, err)
	default:
		return fmt.Errorf("%w: %w: %w", ErrInvalidated, cause, err)
	}
}

// Revalidate reports whether the accepted handoff d is still valid now: neither its
// packet nor any capability of its chain has expired, and nothing it depends on is revoked
// (checked against the store, so a store that cannot answer yields store_unavailable). The
// error is a *reason.Error, or wraps ErrRejected when d is not an accepted decision.
func (g *Gate) Revalidate(ctx context.Context, d *verify.Decision) error {
	if d == nil || !d.Accepted() || d.Envelope == nil {
		return rejected(d)
	}
	if exp := g.expiry(d); !g.now().Before(exp.at) {
		return exp.err()
	}
	return g.checkRevoked(ctx, guardsOf(d))
}

// Cause returns the *reason.Error that cancelled ctx (a context passed to Execute's fn),
// or nil when ctx is live or was cancelled for another reason (the caller's own context
// ending). It is context.Cause, narrowed to reason codes.
func Cause(ctx context.Context) error {
	var re *reason.Error
	if errors.As(context.Cause(ctx), &re) {
		return re
	}
	return nil
}

func rejected(d *verify.Decision) error {
	switch {
	case d == nil:
		return fmt.Errorf("%w: no decision", ErrRejected)
	case d.Accepted():
		return fmt.Errorf("%w: the decision is not final", ErrRejected) // not reached
	case d.Err == nil:
		return fmt.Errorf("%w (%s): %s", ErrRejected, d.Reason, d.Detail)
	}
	return fmt.Errorf("%w (%s): %w", ErrRejected, d.Reason, d.Err)
}

// storeUnavailable is the decision when the revocation store cannot be watched: the
// envelope is not verified at all, so its nonce stays unused and a retry can succeed.
func storeUnavailable(err error) *verify.Decision {
	re := reason.Wrap(reason.StoreUnavailable, "revocation store cannot push revocations", err)
	return &verify.Decision{Decision: verify.Reject, Reason: re.Code, Detail: re.Error(), Err: re}
}

// expiry is when a handoff stops being valid, and why.
type expiry struct {
	at   time.Time
	code reason.Code
	what string
}

func (e expiry) err() error { return e.reasonErr() }

func (e expiry) reasonErr() *reason.Error {
	return reason.New(e.code, fmt.Sprintf("%s expired at %s", e.what, e.at.UTC().Format(time.RFC3339Nano)))
}

// expiry returns the earliest of the packet's expires_at (plus the verifier's grace) and every
// capability's expires_at; the packet's on a tie.
func (g *Gate) expiry(d *verify.Decision) expiry {
	p := d.Envelope.Packet
	e := expiry{p.ExpiresAt.Time().Add(g.v.TimePolicy().Grace), reason.Expired, "packet " + p.PacketID}
	for _, c := range d.Chain {
		if t := c.ExpiresAt.Time(); t.Before(e.at) {
			e = expiry{t, reason.CapabilityExpired, "capability " + c.CapabilityID}
		}
	}
	return e
}

// A guard is one revocation that invalidates a handoff.
type guard struct {
	kind revocation.Kind
	id   string
	code reason.Code
	what string
}

func (gd guard) err(at time.Time) error {
	return reason.New(gd.code, fmt.Sprintf("%s was revoked at %s", gd.what, at.UTC().Format(time.RFC3339Nano)))
}

type target struct {
	kind revocation.Kind
	id   string
}

// guardsOf lists what an accepted handoff depends on, as the pipeline judges it: every
// capability of the chain and its issuer (capability_revoked: revoking a link revokes
// everything below it, revoking an agent revokes what it issued), and the sender
// (agent_revoked).
func guardsOf(d *verify.Decision) []guard {
	p := d.Envelope.Packet
	gs := []guard{{revocation.KindAgent, p.FromAgent, reason.AgentRevoked, "sender agent " + p.FromAgent}}
	for _, c := range d.Chain {
		gs = append(gs, guard{revocation.KindCapability, c.CapabilityID, reason.CapabilityRevoked, "capability " + c.CapabilityID})
		if c.IssuerAgent != p.FromAgent {
			gs = append(gs, guard{revocation.KindAgent, c.IssuerAgent, reason.CapabilityRevoked,
				"agent " + c.IssuerAgent + ", issuer of capability " + c.CapabilityID + ","})
		}
	}
	return gs
}

func (g *Gate) checkRevoked(ctx context.Context, guards []guard) error {
	for _, gd := range guards {
		e, revoked, err := g.revocations.Revoked(ctx, gd.kind, gd.id)
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "revocation store unavailable", err)
		}
		if revoked {
			return gd.err(e.At)
		}
	}
	return nil
}

// PendingHandoff is a handoff that waits in Execute for human approval.
type PendingHandoff struct {
	PacketID     string    `json:"packet_id"`
	PacketDigest string    `json:"packet_digest"` // hex sha256 of the signed bytes; approvals name it
	FromAgent    string    `json:"from_agent"`
	ToAgent      string    `json:"to_agent"`
	Intent       string    `json:"intent"`
	Actions      []string  `json:"allowed_actions"`
	Approvals    int       `json:"approvals"` // valid approvals collected so far
	Since        time.Time `json:"waiting_since"`
	ExpiresAt    time.Time `json:"expires_at"`
}

type waiter struct {
	info PendingHandoff // guarded by Gate.mu
	in   chan *submission
	done chan struct{}
}

type submission struct {
	a   *approval.Approval
	res chan error // buffered; the waiter answers every submission it receives
}

// Pending lists the handoffs waiting for approval, oldest first.
func (g *Gate) Pending() []PendingHandoff {
	g.mu.Lock()
	var out []PendingHandoff
	for _, ws := range g.waiting {
		for _, w := range ws {
			ph := w.info
			ph.Actions = slices.Clone(ph.Actions)
			out = append(out, ph)
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b PendingHandoff) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.PacketID, b.PacketID)
	})
	return out
}

// Submit delivers a signed approval to the handoffs waiting for its packet (matched by
// packet digest) and returns once they have re-verified. It returns ErrNotPending when
// none waits, and the *reason.Error of the rejection (approval_invalid) when the approval
// does not verify; an invalid approval is discarded and the handoff keeps waiting, so a
// bad submission cannot abort it. A valid approval returns nil, whatever the handoff's
// outcome (a valid deny returns nil and rejects the handoff with policy_denied).
func (g *Gate) Submit(ctx context.Context, a *approval.Approval) error {
	if a == nil {
		return errors.New("gate: nil approval")
	}
	v := a.Value()
	if _, err := approval.FromValue(&v); err != nil {
		return err
	}
	g.mu.Lock()
	ws := slices.Clone(g.waiting[a.PacketDigest])
	g.mu.Unlock()
	delivered, ok := false, false
	var firstErr error
	for _, w := range ws {
		s := &submission{a: a, res: make(chan error, 1)}
		select {
		case w.in <- s:
		case <-w.done:
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		delivered = true
		select {
		case err := <-s.res:
			if err == nil {
				ok = true
			} else if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch {
	case !delivered:
		return fmt.Errorf("%w (packet digest %s)", ErrNotPending, a.PacketDigest)
	case ok:
		return nil
	}
	return firstErr
}

// await holds a handoff that needs approval until a decision other than
// human_review_required, the packet's expiry, or the end of ctx.
func (g *Gate) await(ctx context.Context, first *verify.Decision) (*verify.Decision, error) {
	env := first.Envelope
	p := env.Packet
	digest := hex.EncodeToString(first.Digest[:])
	exp := g.expiry(first)
	w := &waiter{
		info: PendingHandoff{
			PacketID: p.PacketID, PacketDigest: digest, FromAgent: p.FromAgent, ToAgent: p.ToAgent,
			Intent: p.Intent, Actions: slices.Clone(p.Permissions.AllowedActions),
			Approvals: len(env.Approvals), Since: g.now(), ExpiresAt: exp.at,
		},
		in:   make(chan *submission),
		done: make(chan struct{}),
	}
	g.mu.Lock()
	g.waiting[digest] = append(g.waiting[digest], w)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if ws := slices.DeleteFunc(g.waiting[digest], func(x *waiter) bool { return x == w }); len(ws) > 0 {
			g.waiting[digest] = ws
		} else {
			delete(g.waiting, digest)
		}
		g.mu.Unlock()
		close(w.done)
	}()

	// Waiting past the deadline is pointless: the handoff could no longer run.
	timer := time.NewTimer(max(exp.at.Sub(g.now()), 0))
	defer timer.Stop()
	var waitC <-chan time.Time // nil (never ready) without a wait bound
	if g.wait > 0 {
		wt := time.NewTimer(g.wait)
		defer wt.Stop()
		waitC = wt.C
	}

	collected := slices.Clone(env.Approvals)
	last := first
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%w (%s): waiting for approval: %w", ErrRejected, last.Reason, ctx.Err())
		case <-waitC:
			return last, nil // still human_review_required: Execute rejects it
		case <-timer.C:
			re := exp.reasonErr()
			d := *last
			d.Decision, d.Reason, d.Detail, d.Err, d.Flags = verify.Reject, re.Code, re.Error(), re, nil
			return &d, nil
		case s := <-w.in:
			d, kept, err := g.consider(ctx, env, collected, s.a)
			collected, last = kept, d
			g.mu.Lock()
			w.info.Approvals = len(collected)
			g.mu.Unlock()
			s.res <- err // after the update: Pending reflects the submission once it returns
			if d.Reason != reason.HumanReviewRequired {
				return d, nil
			}
		}
	}
}

// consider re-verifies env with the collected approvals and a new one. When that fails
// with approval_invalid it rebuilds the list one approval at a time, keeping only the ones
// that verify: the fault may be the new approval (reported to its submitter) or an earlier
// one that has since expired.
func (g *Gate) consider(ctx context.Context, env *packet.Envelope, collected []canonical.Value, a *approval.Approval) (*verify.Decision, []canonical.Value, error) {
	cand := append(slices.Clip(collected), a.Value())
	d := g.reverify(ctx, env, cand)
	if d.Reason != reason.ApprovalInvalid {
		return d, cand, nil
	}
	var kept []canonical.Value
	var last *verify.Decision
	var errNew error
	for i := range cand {
		try := append(slices.Clip(kept), cand[i])
		dd := g.reverify(ctx, env, try)
		if dd.Reason == reason.ApprovalInvalid {
			if i == len(cand)-1 {
				errNew = dd.Err
			}
			continue
		}
		kept, last = try, dd
		if dd.Reason != reason.HumanReviewRequired {
			break // decided: accepted (the nonce is now consumed), denied, or rejected
		}
	}
	if last == nil {
		last = g.reverify(ctx, env, nil)
	}
	return last, kept, errNew
}

// reverify verifies the parsed env with its approvals replaced by approvals; the packet,
// chain and capabilities are verified as parsed, not re-encoded. A decision of
// human_review_required consumes no nonce (the pipeline records nonces last), so this is
// safe to repeat.
func (g *Gate) reverify(ctx context.Context, env *packet.Envelope, approvals []canonical.Value) *verify.Decision {
	e := *env
	e.Approvals = approvals
	return g.verify(ctx, nil, &e)
}

// verify is the gate's one call into the pipeline, as of the verifier's clock: the wire
// envelope data, or the parsed env when it is non-nil.
func (g *Gate) verify(ctx context.Context, data []byte, env *packet.Envelope) *verify.Decision {
	return g.v.VerifyRequest(ctx, data, verify.Request{At: g.now(), Envelope: env})
}

// now reads the verifier's clock.
func (g *Gate) now() time.Time { return g.v.Now() }
