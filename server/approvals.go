package server

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// approvalRequest is the body of POST /v1/approvals: either a decision the server signs
// as the calling approver, or an approval signed elsewhere.
type approvalRequest struct {
	PacketDigest string          `json:"packet_digest"`
	Decision     string          `json:"decision"`
	TTL          duration        `json:"ttl"`
	Note         string          `json:"note"`
	Approval     json.RawMessage `json:"approval"`
}

// defaultApprovalTTL is how long an approval the server signs stays valid.
const defaultApprovalTTL = 15 * time.Minute

func (s *Server) handleApproval(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req approvalRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	var a *approval.Approval
	if len(req.Approval) > 0 {
		if req.PacketDigest != "" || req.Decision != "" || req.TTL.set || req.Note != "" {
			return errf(400, CodeInvalid, "give either approval or packet_digest and decision, not both")
		}
		v, err := canonical.Parse(req.Approval, canonical.Limits{MaxBytes: 64 << 10})
		if err != nil {
			return errf(400, CodeInvalid, "approval is not valid JSON")
		}
		if a, err = approval.FromValue(&v); err != nil {
			return errf(400, CodeInvalid, "approval: "+trim(err.Error()))
		}
	} else {
		id, aerr := s.signerOf(c)
		if aerr != nil {
			return aerr
		}
		if !s.reg.HasRole(id, registry.RoleApprover) {
			return errf(403, CodeForbidden, "agent "+id+" does not hold the approver role")
		}
		dg, err := hex.DecodeString(req.PacketDigest)
		if err != nil || len(dg) != 32 || hex.EncodeToString(dg) != req.PacketDigest {
			return errf(400, CodeInvalid, "packet_digest must be 64 lowercase hex digits")
		}
		if req.Decision != approval.Approve && req.Decision != approval.Deny {
			return errf(400, CodeInvalid, "decision must be approve or deny")
		}
		ttl := defaultApprovalTTL
		if req.TTL.set {
			ttl = req.TTL.d
		}
		if a, err = approval.New(s.signers[id], [32]byte(dg), req.Decision, s.now(), ttl, req.Note); err != nil {
			return errf(400, CodeInvalid, trim(err.Error()))
		}
	}
	held, aerr := s.attachApproval(r, a, c)
	if aerr != nil {
		return aerr
	}
	av := a.Value()
	raw, err := canonical.Marshal(&av, canonical.Wire())
	if err != nil {
		return errf(500, CodeInternal, "encoding the approval failed")
	}
	writeJSON(w, 201, map[string]any{"approval": json.RawMessage(raw), "held": held})
	return nil
}

// attachApproval adds a to the handoff held for its digest, if one is held, and wakes the
// verifications waiting for it. The approval is first checked against the held handoff in
// a dry run: one that does not verify is refused (422) and never stored, so a bad
// submission cannot block the handoff. A valid deny is recorded (the packet stays denied)
// and releases the hold.
//
// Every approval answered 201 is first recorded in the audit log (approval_recorded); one
// that cannot be recorded is refused (503) and neither stored nor returned.
func (s *Server) attachApproval(r *http.Request, a *approval.Approval, c caller) (bool, *apiError) {
	ctx := r.Context()
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	data, ok, err := s.store.Get(ctx, a.PacketDigest)
	if err != nil {
		return false, s.unavailable(err)
	}
	if !ok {
		return false, s.record(ctx, s.approvalEvent(a, false, c))
	}
	env, requested, err := s.decodePending(data)
	if err != nil {
		return false, s.unavailable(err)
	}
	cand := *env
	cand.Approvals = append(slices.Clip(env.Approvals), a.Value())
	req := verify.Request{Envelope: &cand, Recipient: env.Packet.ToAgent, DryRun: true}
	d := s.v.VerifyRequest(ctx, nil, req)
	switch d.Reason {
	case reason.ApprovalInvalid:
		return false, errf(422, string(reason.ApprovalInvalid), d.Detail)
	case reason.StoreUnavailable:
		return false, s.unavailable(d.Err)
	case reason.PolicyDenied:
		if a.Decision == approval.Deny {
			if aerr := s.record(ctx, s.approvalEvent(a, true, c)); aerr != nil {
				return false, aerr
			}
			// Record the deny for good (verification with it, not a dry run: a deny is
			// decided before the nonce, so nothing is consumed), then release the hold.
			req.DryRun = false
			if d := s.v.VerifyRequest(ctx, nil, req); d.Reason == reason.StoreUnavailable {
				return false, s.unavailable(d.Err)
			}
			if err := s.store.Delete(ctx, a.PacketDigest); err != nil {
				return false, s.unavailable(err)
			}
			s.wakeUp(a.PacketDigest)
			return true, nil
		}
	}
	rec, err := encodePending(&cand, requested)
	if err != nil {
		return false, errf(500, CodeInternal, "encoding the held handoff failed")
	}
	if aerr := s.record(ctx, s.approvalEvent(a, true, c)); aerr != nil {
		return false, aerr
	}
	if err := s.store.Put(ctx, a.PacketDigest, rec, s.pendingExpiry(env)); err != nil {
		return false, s.unavailable(err)
	}
	s.wakeUp(a.PacketDigest)
	return true, nil
}

func (s *Server) unavailable(err error) *apiError {
	s.metrics.storeErrors.Inc()
	msg := "store unavailable"
	if err != nil {
		s.log.Warn("store unavailable", "error", err.Error())
		var re *reason.Error
		if errors.As(err, &re) {
			msg = re.Msg
		}
	}
	return errf(503, CodeUnavailable, msg)
}

// PendingHandoff is one entry of GET /v1/approvals/pending.
type PendingHandoff struct {
	PacketDigest string    `json:"packet_digest"`
	PacketID     string    `json:"packet_id"`
	FromAgent    string    `json:"from_agent"`
	ToAgent      string    `json:"to_agent"`
	Intent       string    `json:"intent"`
	Actions      []string  `json:"actions"`
	Risk         *string   `json:"risk"`
	Approvals    int       `json:"approvals"`
	RequestedAt  time.Time `json:"requested_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func (s *Server) handlePending(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if !c.admin && !s.reg.HasRole(c.agent, registry.RoleApprover) {
		return errf(403, CodeForbidden, "listing pending handoffs needs an approver's or the admin token")
	}
	items, err := s.store.List(r.Context())
	if err != nil {
		return s.unavailable(err)
	}
	out := []PendingHandoff{}
	for _, it := range items {
		env, requested, err := s.decodePending(it.Envelope)
		if err != nil {
			s.log.Warn("unreadable pending item skipped", "packet_digest", it.ID)
			continue
		}
		p := env.Packet
		out = append(out, PendingHandoff{
			PacketDigest: it.ID, PacketID: p.PacketID, FromAgent: p.FromAgent, ToAgent: p.ToAgent,
			Intent: p.Intent, Actions: nonNil(p.Permissions.AllowedActions), Risk: p.RiskLevel,
			Approvals: len(env.Approvals), RequestedAt: requested, ExpiresAt: it.ExpiresAt.UTC(),
		})
	}
	writeJSON(w, 200, map[string]any{"pending": out})
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
