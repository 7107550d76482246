package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// maxAccepted bounds how many accepted handoffs a node remembers for GET /v1/validity.
const maxAccepted = 100_000

// acceptedHandoff is what validity needs of an accepted handoff.
type acceptedHandoff struct {
	expires     time.Time // the packet's expiry plus grace
	sender      string
	capIDs      []string
	capIssuers  []string
	validUntil  time.Time // min(expires, capExpires)
	expiredCode reason.Code
}

// acceptedSet remembers accepted handoffs by packet digest until they expire.
type acceptedSet struct {
	mu      sync.Mutex
	m       map[string]acceptedHandoff
	sweptAt time.Time // last scan for expired entries of a full set
}

func (s *Server) remember(d *verify.Decision, digest string) {
	p := d.Envelope.Packet
	h := acceptedHandoff{expires: p.ExpiresAt.Time().Add(s.v.TimePolicy().Grace), sender: p.FromAgent}
	h.validUntil, h.expiredCode = h.expires, reason.Expired
	for _, c := range d.Chain {
		h.capIDs = append(h.capIDs, c.CapabilityID)
		h.capIssuers = append(h.capIssuers, c.IssuerAgent)
		if t := c.ExpiresAt.Time(); t.Before(h.validUntil) {
			h.validUntil, h.expiredCode = t, reason.CapabilityExpired
		}
	}
	now := s.now()
	s.accepted.mu.Lock()
	defer s.accepted.mu.Unlock()
	if len(s.accepted.m) >= maxAccepted {
		if now.Sub(s.accepted.sweptAt) < time.Second {
			return // swept less than a second ago: a scan per request would cost O(n) each
		}
		s.accepted.sweptAt = now
		for k, v := range s.accepted.m {
			if !now.Before(v.validUntil) {
				delete(s.accepted.m, k)
			}
		}
		if len(s.accepted.m) >= maxAccepted {
			return // full of live handoffs: validity answers 404 for this one
		}
	}
	s.accepted.m[digest] = h
}

// handleValidity is GET /v1/validity/{digest}: whether a handoff this node accepted is
// still valid now (not expired, nothing it depends on revoked).
func (s *Server) handleValidity(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	digest := r.PathValue("digest")
	s.accepted.mu.Lock()
	h, ok := s.accepted.m[digest]
	s.accepted.mu.Unlock()
	if !ok {
		return errf(404, CodeNotFound, "this node accepted no live handoff with that packet digest")
	}
	answer := func(valid bool, code reason.Code) *apiError {
		writeJSON(w, 200, map[string]any{"valid": valid, "reason": code, "expires_at": h.validUntil.UTC()})
		return nil
	}
	if !s.now().Before(h.validUntil) {
		return answer(false, h.expiredCode)
	}
	check := func(kind revocation.Kind, id string) (bool, *apiError) {
		_, revoked, err := s.store.Revoked(r.Context(), kind, id)
		if err != nil {
			return false, s.unavailable(err)
		}
		return revoked, nil
	}
	if rv, aerr := check(revocation.KindAgent, h.sender); aerr != nil || rv {
		if aerr != nil {
			return aerr
		}
		return answer(false, reason.AgentRevoked)
	}
	for i, id := range h.capIDs {
		for _, t := range []struct {
			k  revocation.Kind
			id string
		}{{revocation.KindCapability, id}, {revocation.KindAgent, h.capIssuers[i]}} {
			rv, aerr := check(t.k, t.id)
			if aerr != nil {
				return aerr
			}
			if rv {
				return answer(false, reason.CapabilityRevoked)
			}
		}
	}
	return answer(true, reason.OK)
}
