package pebble

import (
	"context"
	"fmt"
	"time"

	pdb "github.com/cockroachdb/pebble"

	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// Revoke implements revocation.Store. The revocation is synced before Revoke
// returns.
func (s *Store) Revoke(ctx context.Context, e revocation.Entry) error {
	if err := revocation.Check(e.Kind, e.ID); err != nil {
		return err
	}
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	s.revMu.Lock()
	defer s.revMu.Unlock() // held while publishing so watchers see revocations in order
	added := false
	err := s.use(func(db *pdb.DB) error {
		k := revokedKey(e.Kind, e.ID)
		_, found, err := getTime(db, k, nil)
		if err != nil || found {
			return err
		}
		added = true
		at := replay.UnixNano(e.At)
		if err := db.Set(k, encodeTime(nil, at), pdb.Sync); err != nil {
			return err
		}
		s.revoked.Store(string(k), at) // only once durable
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: store/pebble: revoke %s %q: %w", revocation.ErrUnavailable, e.Kind, e.ID, err)
	}
	if added {
		s.hub.Publish(e)
	}
	return nil
}

// Revoked implements revocation.Store.
func (s *Store) Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error) {
	if err := revocation.Check(kind, id); err != nil {
		return revocation.Entry{}, false, err
	}
	var at int64
	var found bool
	err := s.use(func(*pdb.DB) error {
		v, ok := s.revoked.Load(string(revokedKey(kind, id)))
		if ok {
			at, found = v.(int64), true
		}
		return nil
	})
	if err != nil {
		return revocation.Entry{}, false, fmt.Errorf("%w: store/pebble: %w", revocation.ErrUnavailable, err)
	}
	if !found {
		return revocation.Entry{}, false, nil
	}
	return revocation.Entry{Kind: kind, ID: id, At: time.Unix(0, at)}, true, nil
}

// Watch implements revocation.Store: it delivers revocations made through
// this Store.
func (s *Store) Watch(ctx context.Context) (<-chan revocation.Entry, error) {
	ch, err := s.hub.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: store/pebble: watch: %w", revocation.ErrUnavailable, err)
	}
	return ch, nil
}

// Put implements pending.Store. The item is synced before Put returns.
func (s *Store) Put(ctx context.Context, id string, envelope []byte, expiresAt time.Time) error {
	if err := pending.CheckPut(id, envelope, expiresAt, s.cfg.Now()); err != nil {
		return err
	}
	v := append(encodeTime(make([]byte, 0, 8+len(envelope)), replay.UnixNano(expiresAt)), envelope...)
	s.penMu.Lock()
	defer s.penMu.Unlock()
	err := s.use(func(db *pdb.DB) error { return db.Set(pendingKey(id), v, pdb.Sync) })
	if err != nil {
		return fmt.Errorf("%w: store/pebble: put %q: %w", pending.ErrUnavailable, id, err)
	}
	return nil
}

// Get implements pending.Store.
func (s *Store) Get(ctx context.Context, id string) ([]byte, bool, error) {
	if err := pending.CheckID(id); err != nil {
		return nil, false, err
	}
	var env []byte
	var exp int64
	var found bool
	err := s.use(func(db *pdb.DB) (err error) {
		exp, found, err = getTime(db, pendingKey(id), &env)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("%w: store/pebble: get %q: %w", pending.ErrUnavailable, id, err)
	}
	if !found || exp <= replay.UnixNano(s.cfg.Now()) {
		return nil, false, nil
	}
	return env, true, nil
}

// List implements pending.Store. Keys sort by id, so the scan is in order.
func (s *Store) List(ctx context.Context) ([]pending.Item, error) {
	now := replay.UnixNano(s.cfg.Now())
	var items []pending.Item
	err := s.use(func(db *pdb.DB) error {
		items = items[:0]
		return scanPending(db, func(id string, exp int64, v []byte) {
			if exp > now {
				items = append(items, pending.Item{ID: id, Envelope: append([]byte(nil), v...), ExpiresAt: time.Unix(0, exp)})
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: store/pebble: list: %w", pending.ErrUnavailable, err)
	}
	return items, nil
}

// Delete implements pending.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := pending.CheckID(id); err != nil {
		return err
	}
	s.penMu.Lock()
	defer s.penMu.Unlock()
	if err := s.use(func(db *pdb.DB) error { return db.Delete(pendingKey(id), pdb.Sync) }); err != nil {
		return fmt.Errorf("%w: store/pebble: delete %q: %w", pending.ErrUnavailable, id, err)
	}
	return nil
}

// sweepPending deletes expired pending items. Pending items are few (they
// wait for people), so a full scan is fine.
func (s *Store) sweepPending(now int64) (int, error) {
	s.penMu.Lock()
	defer s.penMu.Unlock()
	db := s.db // called by the committer, which runs strictly before Close
	b := db.NewBatch()
	defer b.Close()
	n := 0
	err := scanPending(db, func(id string, exp int64, _ []byte) {
		if exp <= now {
			_ = b.Delete(pendingKey(id), nil)
			n++
		}
	})
	if err == nil && !b.Empty() {
		err = b.Commit(pdb.NoSync)
	}
	if err != nil {
		return 0, fmt.Errorf("store/pebble: sweep pending: %w", err)
	}
	return n, nil
}

func scanPending(db *pdb.DB, fn func(id string, exp int64, envelope []byte)) error {
	it, err := db.NewIter(&pdb.IterOptions{LowerBound: []byte(prefixPending), UpperBound: prefixEnd(prefixPending)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		exp, err := decodeTime(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		fn(string(it.Key()[len(prefixPending):]), exp, it.Value()[8:])
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}
