package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// ErrPartial, wrapped by a Task's error, reports that the task did part of the work: the
// receipt says PARTIAL and hashes the outcome the task returned.
var ErrPartial = errors.New("receipt: partial result")

// ErrNoReceipt is wrapped by Run's error when no receipt could be made: the envelope did
// not parse, or its packet is addressed to another agent than the executor.
var ErrNoReceipt = errors.New("receipt: no receipt for this envelope")

// Task is delegated work: it returns the outcome bytes the receipt hashes. ctx is
// cancelled the moment the handoff stops being valid (see gate.Gate.Execute).
type Task func(ctx context.Context, h *verify.Decision) (outcome []byte, err error)

// Result is what Run did: the gate's decision, the task's outcome and the reason the
// receipt hashes (nil for OK), and the status reported.
type Result struct {
	Decision *verify.Decision
	Status   Status
	Outcome  []byte
	// Reason is the compact JSON {"code":…,"message":…} whose sha256 is the receipt's
	// reason_hash; nil when the status is OK. Give it to the verifier with the outcome.
	Reason []byte
}

type runConfig struct {
	executor  string
	dependsOn [][32]byte
	now       func() time.Time
}

// RunOption configures Run.
type RunOption func(*runConfig) error

// WithExecutor names the executor's agent id (default: the packet's to_agent; set it to
// refuse to sign for packets addressed to anyone else).
func WithExecutor(agentID string) RunOption {
	return func(c *runConfig) error { c.executor = agentID; return nil }
}

// WithDependsOn records the digests of the receipts whose results the task used.
func WithDependsOn(digests ...[32]byte) RunOption {
	return func(c *runConfig) error { c.dependsOn = append(c.dependsOn, digests...); return nil }
}

// WithRunClock sets the clock that stamps started_at and finished_at (default time.Now).
// Give it the gate's verifier clock, so that receipts lie inside the validity the gate
// enforced.
func WithRunClock(now func() time.Time) RunOption {
	return func(c *runConfig) error {
		if now == nil {
			return errors.New("receipt: nil clock")
		}
		c.now = now
		return nil
	}
}

// Run executes task for the handoff in envelope through g and returns its result with a
// receipt signed by s. The status says what happened:
//
//   - OK: the handoff was accepted and task returned nil;
//   - PARTIAL: task returned an error wrapping ErrPartial;
//   - ERROR: task failed;
//   - TIMEOUT: the packet (or a capability of its chain) expired while task ran, or ctx
//     ended (while task ran or while the handoff waited for approvals);
//   - REJECTED: the gate refused the handoff (task never ran), or cancelled it because
//     something it depends on was revoked.
//
// The returned error is the gate's or the task's (nil for OK), so a caller never mistakes
// a receipted failure for success; the receipt is returned with it. There is no receipt
// (nil, and the error wraps ErrNoReceipt) when the envelope did not parse or its packet
// is addressed to another agent than the executor.
func Run(ctx context.Context, g *gate.Gate, s identity.Signer, envelope []byte, task Task, opts ...RunOption) (*Result, *Receipt, error) {
	if g == nil || s == nil || task == nil {
		return nil, nil, errors.New("receipt: Run needs a gate, a signer and a task")
	}
	c := runConfig{now: time.Now}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, nil, err
		}
	}
	var started time.Time
	var outcome []byte
	d, err := g.Execute(ctx, envelope, func(ctx context.Context, h *verify.Decision) error {
		started = c.now()
		var terr error
		outcome, terr = task(ctx, h)
		return terr
	})
	finished := c.now()
	if started.IsZero() {
		started = finished
	}
	res := &Result{Decision: d, Outcome: outcome}
	res.Status, res.Reason = classify(err)
	if d == nil || d.Envelope == nil || d.Envelope.Packet == nil {
		return res, nil, errors.Join(err, ErrNoReceipt)
	}
	if c.executor != "" && d.Envelope.Packet.ToAgent != c.executor {
		return res, nil, errors.Join(err, fmt.Errorf("%w: the packet is addressed to %s", ErrNoReceipt, truncate(d.Envelope.Packet.ToAgent)))
	}
	r, serr := SignDecision(s, c.executor, d, Params{
		Status: res.Status, Outcome: outcome, Reason: res.Reason,
		StartedAt: started, FinishedAt: finished, DependsOn: c.dependsOn,
	})
	if serr != nil {
		return res, nil, errors.Join(err, fmt.Errorf("%w: %w", ErrNoReceipt, serr))
	}
	return res, r, err
}

// classify maps the outcome of Execute to a status and the reason bytes.
func classify(err error) (Status, []byte) {
	if err == nil {
		return StatusOK, nil
	}
	code := reason.Of(err, "")
	var st Status
	switch {
	case errors.Is(err, gate.ErrInvalidated):
		st = StatusRejected
		if code == reason.Expired || code == reason.CapabilityExpired {
			st = StatusTimeout
		}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		st = StatusTimeout
	case errors.Is(err, gate.ErrRejected):
		st = StatusRejected
	case errors.Is(err, ErrPartial):
		st = StatusPartial
	default:
		st = StatusError
	}
	if code == "" {
		code = reason.Code(map[Status]string{StatusTimeout: "timeout", StatusPartial: "partial", StatusError: "error", StatusRejected: "rejected"}[st])
	}
	b, _ := json.Marshal(struct {
		Code    reason.Code `json:"code"`
		Message string      `json:"message"`
	}{code, err.Error()}) // strings only: cannot fail
	return st, b
}
