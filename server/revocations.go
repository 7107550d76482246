package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// WatchRevocations follows the revocation stream until ctx ends (or Close), recording in
// the metric trusthandoff_revocation_propagation_seconds how long each revocation took to
// reach this node. A lost stream is re-opened.
func (s *Server) WatchRevocations(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		ch, err := s.store.Watch(ctx)
		if err == nil {
			for e := range ch {
				if d := s.now().Sub(e.At); d >= 0 {
					s.metrics.propagation.Observe(d.Seconds())
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// revocationRequest is the body of POST /v1/revocations: exactly one of capability_id and
// agent_id. An agent that is not the admin revokes a capability by presenting its token
// (it must be the capability's issuer, and the token must be signed with one of its
// registered keys), and may revoke only itself as an agent.
type revocationRequest struct {
	CapabilityID string `json:"capability_id"`
	AgentID      string `json:"agent_id"`
	Token        string `json:"token"`
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	var req revocationRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	if (req.CapabilityID == "") == (req.AgentID == "") {
		return errf(400, CodeInvalid, "give exactly one of capability_id and agent_id")
	}
	e := revocation.Entry{Kind: revocation.KindCapability, ID: req.CapabilityID, At: s.now().UTC()}
	if req.AgentID != "" {
		e.Kind, e.ID = revocation.KindAgent, req.AgentID
		if err := packet.CheckAgentID(req.AgentID); err != nil {
			return errf(400, CodeInvalid, "agent_id: "+err.Error())
		}
		if !c.admin && req.AgentID != c.agent {
			return errf(403, CodeForbidden, "an agent may revoke only itself; other agents need the admin token")
		}
	} else if !c.admin {
		if aerr := s.checkIssuer(c, req); aerr != nil {
			return aerr
		}
	}
	if err := revocation.Check(e.Kind, e.ID); err != nil {
		return errf(400, CodeInvalid, trim(err.Error()))
	}
	if err := s.store.Revoke(r.Context(), e); err != nil {
		if errors.Is(err, revocation.ErrInvalid) {
			return errf(400, CodeInvalid, trim(err.Error()))
		}
		return s.unavailable(err)
	}
	s.log.Info("revoked", "kind", string(e.Kind), "id", e.ID, "by_admin", c.admin, "by_agent", c.agent)
	if aerr := s.recordAfter(r.Context(), audit.RevocationEvent(producerID, string(e.Kind), e.ID, e.At, c.by())); aerr != nil {
		return aerr
	}
	writeJSON(w, 200, map[string]any{"revoked": map[string]any{"kind": e.Kind, "id": e.ID, "at": e.At}})
	return nil
}

// checkIssuer lets a non-admin agent revoke a capability it issued.
func (s *Server) checkIssuer(c caller, req revocationRequest) *apiError {
	if req.Token == "" {
		return errf(403, CodeForbidden, "revoking a capability needs the admin token, or the capability's token presented by its issuer")
	}
	cp, err := capability.DecodeToken(req.Token, canonical.Limits{MaxBytes: s.maxBody})
	if err != nil {
		return errf(400, CodeInvalid, "token: "+trim(err.Error()))
	}
	if cp.CapabilityID != req.CapabilityID {
		return errf(400, CodeInvalid, "the token is not capability "+req.CapabilityID)
	}
	if cp.IssuerAgent != c.agent || !cp.VerifySignature() {
		return errf(403, CodeForbidden, "only the capability's issuer (or the admin) may revoke it")
	}
	// The signing key must be one the registry gives the issuer (now, or ever: a rotated
	// key still proves who issued the link).
	if _, err := s.reg.Resolve(cp.IssuerAgent, cp.PublicKey, cp.IssuedAt.Time()); err != nil {
		return errf(403, CodeForbidden, "the capability is not signed with a registered key of "+c.agent)
	}
	return nil
}

// handleStream is GET /v1/revocations/stream: server-sent events, one "revocation" event
// per revocation made after the request (by any node sharing the store), data
// {"kind","id","at"}. A comment line every 15 s keeps proxies from closing the stream.
// The stream ends when the store's stream is lost: the client reconnects and re-checks.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch, err := s.store.Watch(ctx)
	if err != nil {
		return s.unavailable(err)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(200)
	if _, err := io.WriteString(w, ": trusthandoff revocations\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			b, _ := json.Marshal(map[string]any{"kind": e.Kind, "id": e.ID, "at": e.At.UTC()})
			if _, err := fmt.Fprintf(w, "event: revocation\ndata: %s\n\n", b); err != nil {
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
