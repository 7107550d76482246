package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// liveRegistry is the registry the pipeline reads: a pointer swapped whole when the
// registry file changes, so a verification sees one consistent registry.
type liveRegistry struct {
	p atomic.Pointer[registry.Registry]
}

func (l *liveRegistry) get() *registry.Registry { return l.p.Load() }

func (l *liveRegistry) Resolve(agentID, pemText string, at time.Time) (registry.Binding, error) {
	return l.get().Resolve(agentID, pemText, at)
}

func (l *liveRegistry) KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool {
	return l.get().KeyValid(agentID, pub, at)
}

func (l *liveRegistry) ValidKeyVerifier(agentID string, pub ed25519.PublicKey, at time.Time) (identity.Verifier, bool) {
	return l.get().ValidKeyVerifier(agentID, pub, at)
}

func (l *liveRegistry) HasRole(agentID, role string) bool { return l.get().HasRole(agentID, role) }

// registryPoll is how often WatchRegistryFile looks at the registry file.
const registryPoll = 200 * time.Millisecond

// WatchRegistryFile re-reads the registry file whenever its size or modification time
// changes, until ctx ends, and serves the new registry from then on. Nodes of a cluster
// that share one registry file thus see each other's registry changes within a poll
// interval (200 ms). A file that fails to load is logged and the current registry kept.
func (s *Server) WatchRegistryFile(ctx context.Context, path string) {
	if path == "" {
		return
	}
	last := fileStamp(path)
	t := time.NewTicker(registryPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-t.C:
		}
		cur := fileStamp(path)
		if cur == last {
			continue
		}
		last = cur
		s.regMu.Lock()
		err := s.reloadRegistry(path)
		s.regMu.Unlock()
		if err != nil {
			s.log.Warn("registry file changed but does not load; keeping the current registry", "path", path, "error", err.Error())
		} else {
			s.log.Info("registry reloaded", "path", path)
		}
	}
}

type stamp struct {
	size int64
	mod  time.Time
	ok   bool
}

func fileStamp(path string) stamp {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{st.Size(), st.ModTime(), true}
}

// reloadRegistry loads path and swaps it in. Callers hold regMu.
func (s *Server) reloadRegistry(path string) error {
	r, err := registry.Load(path)
	if err != nil {
		return err
	}
	if err := r.SetVerifierFactory(s.cfg.VerifierFactory); err != nil {
		return err
	}
	s.reg.p.Store(r)
	return nil
}

// agentJSON is one agent of GET /v1/registry/agents.
type agentJSON struct {
	AgentID   string          `json:"agent_id"`
	Roles     []string        `json:"roles"`
	RevokedAt *time.Time      `json:"revoked_at"`
	Keys      []*registry.Key `json:"keys"`
}

func (s *Server) handleListAgents(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	reg := s.reg.get()
	out := []agentJSON{}
	for _, id := range reg.IDs() {
		a, _ := reg.Agent(id)
		out = append(out, agentJSON{AgentID: id, Roles: nonNil(a.Roles), RevokedAt: a.RevokedAt, Keys: a.Keys})
	}
	writeJSON(w, 200, map[string]any{"agents": out})
	return nil
}

type addAgentRequest struct {
	PublicKey string   `json:"public_key"`
	AgentID   string   `json:"agent_id"`
	Roles     []string `json:"roles"`
}

func (s *Server) handleAddAgent(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	var req addAgentRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	pub, err := identity.ParsePublicKeyPEM(req.PublicKey)
	if err != nil {
		return errf(400, CodeInvalid, "public_key: "+trim(err.Error()))
	}
	if req.AgentID != "" {
		if err := packet.CheckAgentID(req.AgentID); err != nil {
			return errf(400, CodeInvalid, "agent_id: "+err.Error())
		}
	}
	for _, role := range req.Roles {
		if role != registry.RoleApprover {
			return errf(400, CodeInvalid, "roles: the only role is "+registry.RoleApprover)
		}
	}
	var id string
	if aerr := s.grantRegistry(r.Context(), func(reg *registry.Registry) (audit.Event, error) {
		var err error
		if id, err = reg.Add(req.AgentID, pub, req.Roles, nil); err != nil {
			return audit.Event{}, err
		}
		return audit.RegistryChangeEvent(producerID, audit.RegistryAdd, id, pub, req.Roles, s.now(), "admin"), nil
	}); aerr != nil {
		return aerr
	}
	s.log.Info("registry: agent added", "agent_id", id)
	writeJSON(w, 201, map[string]any{"agent_id": id})
	return nil
}

type rotateRequest struct {
	PublicKey string   `json:"public_key"`
	Overlap   duration `json:"overlap"`
}

func (s *Server) handleRotateAgent(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	id := r.PathValue("id")
	var req rotateRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	pub, err := identity.ParsePublicKeyPEM(req.PublicKey)
	if err != nil {
		return errf(400, CodeInvalid, "public_key: "+trim(err.Error()))
	}
	overlap := registry.DefaultOverlap
	if req.Overlap.set {
		overlap = req.Overlap.d
	}
	if aerr := s.grantRegistry(r.Context(), func(reg *registry.Registry) (audit.Event, error) {
		a, ok := reg.Agent(id)
		if !ok {
			return audit.Event{}, errNoAgent
		}
		if err := reg.Rotate(id, pub, s.now(), overlap); err != nil {
			return audit.Event{}, err
		}
		return audit.RegistryChangeEvent(producerID, audit.RegistryRotate, id, pub, a.Roles, s.now(), "admin"), nil
	}); aerr != nil {
		return aerr
	}
	s.log.Info("registry: key rotated", "agent_id", id)
	writeJSON(w, 200, map[string]any{"agent_id": id})
	return nil
}

func (s *Server) handleRevokeAgent(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	id := r.PathValue("id")
	at := s.now().UTC()
	if aerr := s.mutateRegistry(func(reg *registry.Registry) error {
		if _, ok := reg.Agent(id); !ok {
			return errNoAgent
		}
		return reg.Revoke(id, at)
	}); aerr != nil {
		return aerr
	}
	// The revocation store pushes the revocation to every node (and running gates) at once;
	// the registry file follows within its poll interval.
	if err := s.store.Revoke(r.Context(), revocation.Entry{Kind: revocation.KindAgent, ID: id, At: at}); err != nil {
		return s.unavailable(err)
	}
	s.log.Info("registry: agent revoked", "agent_id", id)
	if aerr := s.recordAfter(r.Context(), audit.RegistryChangeEvent(producerID, audit.RegistryRevoke, id, nil, nil, at, "admin")); aerr != nil {
		return aerr
	}
	writeJSON(w, 200, map[string]any{"agent_id": id, "revoked_at": at})
	return nil
}

var (
	errNoAgent    = errors.New("no such agent")
	errUnrecorded = errors.New("the change could not be recorded")
)

// grantRegistry is mutateRegistry for a change that grants authority: fn makes it and
// returns its event, which is recorded before the changed registry is written or served.
// A change that cannot be recorded is not made (503).
func (s *Server) grantRegistry(ctx context.Context, fn func(*registry.Registry) (audit.Event, error)) *apiError {
	var unrecorded *apiError
	aerr := s.mutateRegistry(func(reg *registry.Registry) error {
		ev, err := fn(reg)
		if err != nil {
			return err
		}
		if unrecorded = s.record(ctx, ev); unrecorded != nil {
			return errUnrecorded
		}
		return nil
	})
	if unrecorded != nil {
		return unrecorded
	}
	return aerr
}

// cloneRegistry returns a copy of r through its file form.
func cloneRegistry(r *registry.Registry) (*registry.Registry, error) {
	data, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	return registry.Parse(data)
}

// mutateRegistry applies fn to the registry: to the file (under its lock, written
// atomically) and then to the served registry, or only to a copy of the served one that
// replaces it without a file. Nothing changes when fn fails.
func (s *Server) mutateRegistry(fn func(*registry.Registry) error) *apiError {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	var err error
	if s.cfg.RegistryPath != "" {
		if err = registry.Update(s.cfg.RegistryPath, fn); err == nil {
			err = s.reloadRegistry(s.cfg.RegistryPath)
			if err != nil {
				return s.unavailable(err)
			}
		}
	} else {
		// Copy on write, as with a file: fn's changes are served only once fn succeeded,
		// and verifications in flight keep reading the registry they started with.
		var cp *registry.Registry
		if cp, err = cloneRegistry(s.reg.get()); err != nil {
			return errf(500, CodeInternal, "copying the registry failed")
		}
		if err = fn(cp); err == nil {
			if err = cp.SetVerifierFactory(s.cfg.VerifierFactory); err != nil {
				return errf(500, CodeInternal, "building the registry's verifiers failed")
			}
			s.reg.p.Store(cp)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoAgent):
		return errf(404, CodeNotFound, "no such agent")
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist):
		return s.unavailable(err)
	}
	return errf(422, CodeInvalid, trim(err.Error()))
}
