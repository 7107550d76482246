package revocation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/fanout"
)

// MemoryConfig configures NewMemory. The zero value is usable.
type MemoryConfig struct {
	// Now fills in Entry.At when Revoke is given a zero time (default time.Now).
	Now func() time.Time
	// WatchBuffer is how many undelivered entries a watcher may fall behind
	// before its channel is closed (default 1024).
	WatchBuffer int
}

// DefaultWatchBuffer is the default per-watcher buffer of every backend.
const DefaultWatchBuffer = 1024

// Memory is an in-memory Store for tests and single-process use. It is
// unbounded: revocations are permanent and few.
type Memory struct {
	now  func() time.Time
	hub  *fanout.Hub[Entry]
	mu   sync.RWMutex
	revs map[key]Entry
}

type key struct {
	kind Kind
	id   string
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = DefaultWatchBuffer
	}
	return &Memory{now: cfg.Now, hub: fanout.New[Entry](cfg.WatchBuffer), revs: make(map[key]Entry)}
}

// Revoke implements Store.
func (m *Memory) Revoke(ctx context.Context, e Entry) error {
	if err := Check(e.Kind, e.ID); err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = m.now()
	}
	m.mu.Lock()
	defer m.mu.Unlock() // held while publishing so watchers see revocations in order
	k := key{e.Kind, e.ID}
	if _, ok := m.revs[k]; ok {
		return nil
	}
	m.revs[k] = e
	m.hub.Publish(e)
	return nil
}

// Revoked implements Store.
func (m *Memory) Revoked(ctx context.Context, kind Kind, id string) (Entry, bool, error) {
	if err := Check(kind, id); err != nil {
		return Entry{}, false, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.revs[key{kind, id}]
	return e, ok, nil
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context) (<-chan Entry, error) {
	ch, err := m.hub.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("revocation: watch: %w", err)
	}
	return ch, nil
}
