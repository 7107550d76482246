package pending

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryConfig configures NewMemory. The zero value is usable.
type MemoryConfig struct {
	// MaxItems bounds the number of live items (default 10000); Put fails
	// with an error wrapping ErrUnavailable when that many are live.
	MaxItems int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is a bounded in-memory Store.
type Memory struct {
	now   func() time.Time
	max   int
	mu    sync.Mutex
	items map[string]Item
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{now: cfg.Now, max: cfg.MaxItems, items: make(map[string]Item)}
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, id string, envelope []byte, expiresAt time.Time) error {
	now := m.now()
	if err := CheckPut(id, envelope, expiresAt, now); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[id]; !ok && len(m.items) >= m.max {
		m.sweepLocked(now) // O(n), but only when full; pending items are few
		if len(m.items) >= m.max {
			return fmt.Errorf("%w: %d items pending", ErrUnavailable, m.max)
		}
	}
	m.items[id] = Item{ID: id, Envelope: slices.Clone(envelope), ExpiresAt: expiresAt}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) ([]byte, bool, error) {
	if err := CheckID(id); err != nil {
		return nil, false, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, false, nil
	}
	if !it.ExpiresAt.After(now) {
		delete(m.items, id)
		return nil, false, nil
	}
	return slices.Clone(it.Envelope), true, nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context) ([]Item, error) {
	now := m.now()
	m.mu.Lock()
	m.sweepLocked(now)
	out := make([]Item, 0, len(m.items))
	for _, it := range m.items {
		it.Envelope = slices.Clone(it.Envelope)
		out = append(out, it)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, id)
	return nil
}

func (m *Memory) sweepLocked(now time.Time) {
	for id, it := range m.items {
		if !it.ExpiresAt.After(now) {
			delete(m.items, id)
		}
	}
}
