package server

import (
	"context"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
)

// producerID names the sidecar in the audit events it emits.
const producerID = "trusthandoff-serve"

// The audit record of a change of state made through the API (a revocation, an approval,
// a registry change) follows one rule: a change that grants authority (an approval, an
// agent added, a key rotated in) is recorded before it takes effect and refused (503)
// when it cannot be recorded; a change that only takes authority away (a revocation of a
// capability or an agent) takes effect first, never held up by the audit sink, and is
// then recorded; when that fails the answer is 503 saying the change took effect.

// record emits ev to the audit sink, if there is one.
func (s *Server) record(ctx context.Context, ev audit.Event) *apiError {
	if s.cfg.Audit == nil {
		return nil
	}
	if err := s.cfg.Audit.Emit(ctx, ev); err != nil {
		s.metrics.storeErrors.Inc()
		s.log.Warn("audit sink failed", "event_type", ev.EventType, "error", err.Error())
		return errf(503, CodeUnavailable, "the audit sink cannot record the change; it was not made")
	}
	return nil
}

// recordAfter is record for a change already made.
func (s *Server) recordAfter(ctx context.Context, ev audit.Event) *apiError {
	if aerr := s.record(ctx, ev); aerr != nil {
		return errf(503, CodeUnavailable, "the change took effect, but the audit sink cannot record it; retry to record it")
	}
	return nil
}

// by names the caller in a change's event: "admin", or the agent's id.
func (c caller) by() string {
	if c.admin {
		return "admin"
	}
	return c.agent
}

// approvalEvent is the approval_recorded event of a, submitted by c.
func (s *Server) approvalEvent(a *approval.Approval, held bool, c caller) audit.Event {
	return audit.ApprovalRecordedEvent(producerID, audit.Approval{
		ApprovalID: a.ApprovalID, PacketDigest: a.PacketDigest, Approver: a.Approver,
		Decision: a.Decision, ExpiresAt: a.ExpiresAt.Time(),
	}, held, s.now(), c.by())
}
