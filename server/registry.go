package server

import (
	"context"
	"crypto/ed25519"
	"os"
	"sync/atomic"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/registry"
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
