package bundle

import (
	"errors"
	"strconv"
	"strings"

	"github.com/trusthandoff/trusthandoff-go/reason"
)

// ErrAuditOption is returned by Verify when its verifier options include verify.WithAudit:
// the dry runs of a bundle check would emit audit events.
var ErrAuditOption = errors.New("bundle: verifier options must not include verify.WithAudit (checking a bundle writes no audit events)")

// ErrInvalid is wrapped by every failure Verify reports: the bundle does not prove its
// workflow.
var ErrInvalid = errors.New("bundle does not verify")

// Problem names what is wrong with a step. Problems are stable API (snake_case), like
// reason codes; a StepError carries the protocol reason code too when there is one.
type Problem string

// Problems, in the order Verify checks a step.
const (
	// ProblemMalformed: a part of the bundle cannot be decoded.
	ProblemMalformed Problem = "malformed"
	// ProblemRegistry: no registry to verify against.
	ProblemRegistry Problem = "registry_missing"
	// ProblemCheckpoint: the checkpoint is absent, unsigned by the log key, or malformed.
	ProblemCheckpoint Problem = "checkpoint_invalid"
	// ProblemDuplicate: the step repeats another step's packet (same id or nonce).
	ProblemDuplicate Problem = "duplicate_step"
	// ProblemWorkflow: the step does not belong to the bundle's workflow.
	ProblemWorkflow Problem = "workflow_mismatch"
	// ProblemAuditMissing: the step has no audit record of its acceptance.
	ProblemAuditMissing Problem = "audit_missing"
	// ProblemAuditMismatch: an audit record does not describe this step.
	ProblemAuditMismatch Problem = "audit_mismatch"
	// ProblemProof: an inclusion proof does not lead to the checkpoint's root.
	ProblemProof Problem = "proof_invalid"
	// ProblemHandoff: the envelope does not verify at the step's time (Reason says why:
	// expired, human_review_required, capability_escalation, …).
	ProblemHandoff Problem = "handoff_rejected"
	// ProblemReceiptMissing: the step has no receipt.
	ProblemReceiptMissing Problem = "receipt_missing"
	// ProblemReceipt: the receipt does not verify for this step's packet (Reason says why).
	ProblemReceipt Problem = "receipt_invalid"
	// ProblemOutcome: the carried outcome does not match the receipt's outcome_hash.
	ProblemOutcome Problem = "outcome_mismatch"
	// ProblemDependency: a depends_on names no verified receipt of an earlier result.
	ProblemDependency Problem = "dependency_broken"
)

// StepError is one failure of Verify. Step is 1-based; 0 means the bundle as a whole
// (its registry or checkpoint).
type StepError struct {
	Step     int
	PacketID string
	Problem  Problem
	// Reason is the protocol reason code behind the failure ("" when there is none).
	Reason reason.Code
	Msg    string
	Err    error // optional cause (a *reason.Error for handoff and receipt failures)
}

func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString("bundle: ")
	if e.Step > 0 {
		b.WriteString("step " + strconv.Itoa(e.Step))
		if e.PacketID != "" {
			b.WriteString(" (packet " + truncate(e.PacketID) + ")")
		}
		b.WriteString(": ")
	}
	b.WriteString(string(e.Problem))
	if e.Reason != "" {
		b.WriteString(" [" + string(e.Reason) + "]")
	}
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns ErrInvalid and the cause.
func (e *StepError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Error is what Verify returns when a bundle fails: every failure found, at most one per
// step and check, in step order. errors.As(err, &stepErr) yields the first.
type Error struct {
	Failures []*StepError
}

func (e *Error) Error() string {
	if len(e.Failures) == 1 {
		return e.Failures[0].Error()
	}
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = f.Error()
	}
	return strconv.Itoa(len(e.Failures)) + " failures:\n" + strings.Join(msgs, "\n")
}

// Unwrap returns the failures.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}
