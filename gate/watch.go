package gate

import (
	"context"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// watcher shares one subscription to the revocation stream among every handoff of a gate
// (a per-handoff subscription would cost each running handoff a goroutine and the
// store's per-watcher buffer). The subscription is opened by the first handoff that needs
// it and closed when the last one releases it.
type watcher struct {
	store revocation.Store
	probe time.Duration // liveness probe interval; 0: none

	mu  sync.Mutex
	cur *subscription // the live subscription, nil when none
}

// subscription is one Watch stream and the handoffs armed on it. Handoffs hold it from
// before their verification; only once accepted do they arm, registering the revocations
// that invalidate them. Until then the stream is merely drained, so a long wait for
// approval cannot make it overflow.
type subscription struct {
	cancel context.CancelFunc
	refs   int // guarded by watcher.mu

	mu    sync.Mutex
	armed map[target]map[*armed]guard
	all   map[*armed]struct{}
	lost  bool
}

// armed is one running handoff.
type armed struct {
	fire func(error)
}

var errLost = reason.Wrap(reason.StoreUnavailable, "revocation stream lost; revocations may have been missed", revocation.ErrUnavailable)

// acquire returns the live subscription, opening one when there is none (or the last one
// was lost). Release it with release.
func (w *watcher) acquire() (*subscription, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.cur; s != nil && !s.isLost() {
		s.refs++
		return s, nil
	}
	// Detached from any caller's context: the stream outlives the handoff that opened it
	// while others hold it.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := w.store.Watch(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &subscription{cancel: cancel, refs: 1, armed: map[target]map[*armed]guard{}, all: map[*armed]struct{}{}}
	w.cur = s
	go s.drain(ctx, ch)
	if w.probe > 0 {
		go s.probeLiveness(ctx, w.store, w.probe)
	}
	return s, nil
}

// release drops a reference taken by acquire; the last one closes the stream.
func (w *watcher) release(s *subscription) {
	if s == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.refs--; s.refs == 0 {
		s.cancel()
		if w.cur == s {
			w.cur = nil
		}
	}
}

func (s *subscription) isLost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

func (s *subscription) drain(ctx context.Context, ch <-chan revocation.Entry) {
	for e := range ch {
		s.mu.Lock()
		for a, gd := range s.armed[target{e.Kind, e.ID}] {
			a.fire(gd.err(e.At))
		}
		s.mu.Unlock()
	}
	if ctx.Err() != nil {
		return // closed by release
	}
	// Closed under a live context: the store lost its subscription, or we fell behind.
	s.markLost(errLost)
}

// probeID is the id the liveness probe asks about. Only the error of the answer matters.
const probeID = "trusthandoff:gate-liveness-probe"

// probeLiveness asks the store a question every interval and marks the subscription lost
// when the store cannot answer. Stores such as store/redis keep Watch channels open while
// their own subscription is down (and deliver what was missed when it is back), and
// report the outage only through errors from Revoked; this turns that into a
// cancellation within one interval. It reads no revocation of the handoffs: those are
// pushed.
func (s *subscription) probeLiveness(ctx context.Context, store revocation.Store, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, _, err := store.Revoked(ctx, revocation.KindAgent, probeID); err != nil && ctx.Err() == nil {
			s.markLost(reason.Wrap(reason.StoreUnavailable, "revocation store cannot answer; revocations may be missed", err))
			return
		}
	}
}

// markLost marks the subscription lost: revocations may have been missed, so every armed
// handoff fails closed, and later handoffs subscribe again.
func (s *subscription) markLost(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return
	}
	s.lost = true
	for a := range s.all {
		a.fire(cause)
	}
}

// arm registers a running handoff: fire is called with the cause when a revocation
// matches one of guards (the first guard of a target wins), or when the stream is lost. It
// reports false, registering nothing, when the stream was already lost. The returned
// function unregisters.
func (s *subscription) arm(guards []guard, fire func(error)) (unarm func(), ok bool) {
	a := &armed{fire: fire}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return func() {}, false
	}
	s.all[a] = struct{}{}
	for _, gd := range guards {
		t := target{gd.kind, gd.id}
		m := s.armed[t]
		if m == nil {
			m = map[*armed]guard{}
			s.armed[t] = m
		}
		if _, dup := m[a]; !dup {
			m[a] = gd
		}
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.all, a)
		for _, gd := range guards {
			t := target{gd.kind, gd.id}
			if m := s.armed[t]; m != nil {
				delete(m, a)
				if len(m) == 0 {
					delete(s.armed, t)
				}
			}
		}
	}, true
}
