package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// handoffRequest is the body of POST /v1/handoffs.
type handoffRequest struct {
	To             string          `json:"to"`
	Intent         string          `json:"intent"`
	Actions        []string        `json:"actions"`
	MaxToolCalls   *int64          `json:"max_tool_calls"`
	Risk           string          `json:"risk"`
	Context        json.RawMessage `json:"context"`
	Capabilities   []string        `json:"capabilities"`
	RequiresReview bool            `json:"requires_review"`
	TTL            duration        `json:"ttl"`
}

func (s *Server) handleHandoff(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	id, aerr := s.signerOf(c)
	if aerr != nil {
		return aerr
	}
	var req handoffRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	if err := packet.CheckAgentID(req.To); err != nil {
		return errf(400, CodeInvalid, "to: "+err.Error())
	}
	if req.Intent == "" {
		return errf(400, CodeInvalid, "intent is required")
	}
	opts := []packet.BuildOption{
		packet.WithAgentID(id), packet.WithIssuedAt(s.now()),
		packet.WithLimits(canonical.Limits{MaxBytes: s.maxBody}),
	}
	if req.Actions != nil {
		opts = append(opts, packet.WithActions(req.Actions...))
	}
	if req.MaxToolCalls != nil {
		opts = append(opts, packet.WithMaxToolCalls(*req.MaxToolCalls))
	}
	if req.Risk != "" {
		if req.Risk != packet.RiskRead && req.Risk != packet.RiskWrite {
			return errf(400, CodeInvalid, "risk must be read or write")
		}
		opts = append(opts, packet.WithRisk(req.Risk))
	}
	if req.TTL.set {
		opts = append(opts, packet.WithTTL(req.TTL.d))
	}
	if req.RequiresReview {
		opts = append(opts, packet.WithConstraints(packet.Constraints{RequiresHumanReview: true}))
	}
	if len(req.Context) > 0 && string(req.Context) != "null" {
		v, err := canonical.Parse(req.Context, canonical.Limits{MaxBytes: s.maxBody})
		if err != nil || v.Kind != canonical.Object {
			return errf(400, CodeInvalid, "context must be a JSON object")
		}
		opts = append(opts, packet.WithContext(v))
	}
	if len(req.Capabilities) > 0 {
		chain := make([]packet.Linker, len(req.Capabilities))
		for i, tok := range req.Capabilities {
			cp, err := capability.DecodeToken(tok, canonical.Limits{MaxBytes: s.maxBody})
			if err != nil {
				return errf(400, CodeInvalid, "capabilities: "+trim(err.Error()))
			}
			chain[i] = cp
		}
		opts = append(opts, packet.WithCapabilities(chain...))
	}
	env, err := packet.Build(s.signers[id], req.To, req.Intent, opts...)
	if err != nil {
		return errf(400, CodeInvalid, trim(err.Error()))
	}
	raw, err := env.MarshalJSON()
	if err != nil {
		return errf(500, CodeInternal, "encoding the envelope failed")
	}
	dg, err := approval.Digest(env.Packet, packet.Rule04)
	if err != nil {
		return errf(500, CodeInternal, "digest of the packet failed")
	}
	s.log.Info("handoff signed", "from_agent", id, "to_agent", req.To, "packet_id", env.Packet.PacketID)
	writeJSON(w, 201, map[string]any{
		"envelope": json.RawMessage(raw), "packet_id": env.Packet.PacketID, "packet_digest": digestKey(dg),
	})
	return nil
}

// capabilityRequest is the body of POST /v1/capabilities.
type capabilityRequest struct {
	To           string   `json:"to"`
	Actions      []string `json:"actions"`
	MaxToolCalls *int64   `json:"max_tool_calls"`
	TTL          duration `json:"ttl"`
	Parent       string   `json:"parent"`
}

func (s *Server) handleCapability(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	id, aerr := s.signerOf(c)
	if aerr != nil {
		return aerr
	}
	var req capabilityRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	if err := packet.CheckAgentID(req.To); err != nil {
		return errf(400, CodeInvalid, "to: "+err.Error())
	}
	if req.Actions == nil && req.Parent == "" {
		return errf(400, CodeInvalid, "actions is required (or a parent to inherit them from)")
	}
	opts := []capability.Option{capability.WithIssuerAgent(id), capability.WithIssuedAt(s.now())}
	if req.TTL.set {
		opts = append(opts, capability.WithTTL(req.TTL.d))
	}
	if req.MaxToolCalls != nil {
		if *req.MaxToolCalls < 0 {
			return errf(400, CodeInvalid, "max_tool_calls must not be negative")
		}
		opts = append(opts, capability.WithMaxToolCalls(*req.MaxToolCalls))
	}
	if req.Parent != "" {
		par, err := capability.DecodeToken(req.Parent, canonical.Limits{MaxBytes: s.maxBody})
		if err != nil {
			return errf(400, CodeInvalid, "parent: "+trim(err.Error()))
		}
		opts = append(opts, capability.WithParent(par))
	}
	cp, err := capability.Delegate(s.signers[id], req.To, req.Actions, opts...)
	if err != nil {
		return errf(400, CodeInvalid, trim(err.Error()))
	}
	writeJSON(w, 201, map[string]any{
		"capability_id": cp.CapabilityID, "token": cp.Token(),
		"issuer_agent": cp.IssuerAgent, "subject_agent": cp.SubjectAgent,
		"expires_at": cp.ExpiresAt.Time().UTC().Format(time.RFC3339),
	})
	return nil
}
