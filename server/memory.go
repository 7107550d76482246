package server

import (
	"context"
	"time"

	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// memoryStore is the three in-memory stores in one value.
type memoryStore struct {
	nonces      *replay.Memory
	revocations *revocation.Memory
	pending     *pending.Memory
}

// NewMemoryStore returns a Store that keeps everything in memory, bounded and expiring
// (for tests and for a node whose state may be lost on restart). now is the clock (nil:
// time.Now).
func NewMemoryStore(now func() time.Time) Store {
	return &memoryStore{
		replay.NewMemory(replay.MemoryConfig{Now: now}),
		revocation.NewMemory(revocation.MemoryConfig{Now: now}),
		pending.NewMemory(pending.MemoryConfig{Now: now}),
	}
}

func (m *memoryStore) Record(ctx context.Context, key []byte, exp time.Time) (bool, error) {
	return m.nonces.Record(ctx, key, exp)
}

func (m *memoryStore) Seen(ctx context.Context, key []byte) (bool, error) {
	return m.nonces.Seen(ctx, key)
}

func (m *memoryStore) Revoke(ctx context.Context, e revocation.Entry) error {
	return m.revocations.Revoke(ctx, e)
}

func (m *memoryStore) Revoked(ctx context.Context, k revocation.Kind, id string) (revocation.Entry, bool, error) {
	return m.revocations.Revoked(ctx, k, id)
}

func (m *memoryStore) Watch(ctx context.Context) (<-chan revocation.Entry, error) {
	return m.revocations.Watch(ctx)
}

func (m *memoryStore) Put(ctx context.Context, id string, env []byte, exp time.Time) error {
	return m.pending.Put(ctx, id, env, exp)
}

func (m *memoryStore) Get(ctx context.Context, id string) ([]byte, bool, error) {
	return m.pending.Get(ctx, id)
}

func (m *memoryStore) List(ctx context.Context) ([]pending.Item, error) { return m.pending.List(ctx) }

func (m *memoryStore) Delete(ctx context.Context, id string) error { return m.pending.Delete(ctx, id) }
