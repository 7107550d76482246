package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/revocation"
)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.handle("POST /v1/verify", verifying, s.handleVerify)
	s.handle("GET /healthz", anyone, s.handleHealthz)
	s.handle("GET /readyz", anyone, s.handleReadyz)
	metricsHandler := s.metrics.handler()
	s.handle("GET /metrics", anyone, func(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
		metricsHandler.ServeHTTP(w, r)
		return nil
	})
	s.routesMore()
	// Everything else: a JSON 404 (the mux's own answers are plain text).
	s.handle("/", anyone, func(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := s.mux.Handler(r2); p != "/" && p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return errf(405, CodeMethodNotAllowed, "method "+r.Method+" is not allowed here")
		}
		return errf(404, CodeNotFound, "no such endpoint")
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	writeJSON(w, 200, map[string]string{"status": "ok"})
	return nil
}

// Readier is implemented by an audit sink (Config.Audit) that can tell whether it could
// record an event now, such as a networked one whose server may be unreachable; GET /readyz
// answers 503 while Ready fails.
type Readier interface {
	Ready(ctx context.Context) error
}

// readyProbeID is looked up in the revocation store by GET /readyz: a store that cannot
// answer (Redis down, or its revocation cache not synced) makes the node unready.
const readyProbeID = "trusthandoff-readyz-probe"

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, _, err := s.store.Revoked(ctx, revocation.KindAgent, readyProbeID); err != nil {
		s.metrics.storeErrors.Inc()
		return errf(503, CodeUnavailable, "the revocation store cannot answer")
	}
	if _, err := s.store.Seen(ctx, []byte(readyProbeID)); err != nil {
		s.metrics.storeErrors.Inc()
		return errf(503, CodeUnavailable, "the replay store cannot answer")
	}
	if rd, ok := s.cfg.Audit.(Readier); ok {
		if err := rd.Ready(ctx); err != nil {
			s.metrics.storeErrors.Inc()
			return errf(503, CodeUnavailable, "the audit sink cannot record")
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
	return nil
}
