package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
)

// Pending items are stored as 8 bytes of expiry (Unix nanoseconds, big-endian)
// followed by the envelope, with a PX TTL, and indexed in a sorted set scored
// by expiry in milliseconds so that List need not scan the keyspace.

func encodeItem(exp int64, envelope []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(envelope)), uint64(exp)), envelope...)
}

func decodeItem(v string) (int64, []byte, error) {
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("corrupt pending item: %d bytes", len(v))
	}
	return int64(binary.BigEndian.Uint64([]byte(v[:8]))), []byte(v[8:]), nil
}

// Put implements pending.Store.
func (s *Store) Put(ctx context.Context, id string, envelope []byte, expiresAt time.Time) error {
	now := s.cfg.Now()
	if err := pending.CheckPut(id, envelope, expiresAt, now); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("%w: %w", pending.ErrUnavailable, ErrClosed)
	}
	exp := replay.UnixNano(expiresAt)
	ttl := (expiresAt.Sub(now) + time.Millisecond - 1).Truncate(time.Millisecond)
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, s.keys.pendingItem+id, encodeItem(exp, envelope), ttl)
		p.ZAdd(ctx, s.keys.pendingIndex, goredis.Z{Score: float64(expiresAt.UnixMilli()), Member: id})
		// Drop index entries of items that have expired.
		p.ZRemRangeByScore(ctx, s.keys.pendingIndex, "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		return nil
	})
	if err != nil {
		return unavailable(pending.ErrUnavailable, "put", err)
	}
	return nil
}

// Get implements pending.Store.
func (s *Store) Get(ctx context.Context, id string) ([]byte, bool, error) {
	if err := pending.CheckID(id); err != nil {
		return nil, false, err
	}
	if s.isClosed() {
		return nil, false, fmt.Errorf("%w: %w", pending.ErrUnavailable, ErrClosed)
	}
	v, err := s.client.Get(ctx, s.keys.pendingItem+id).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable(pending.ErrUnavailable, "get", err)
	}
	exp, env, err := decodeItem(v)
	if err != nil {
		return nil, false, unavailable(pending.ErrUnavailable, "get", err)
	}
	if exp <= replay.UnixNano(s.cfg.Now()) {
		return nil, false, nil
	}
	return env, true, nil
}

// List implements pending.Store.
func (s *Store) List(ctx context.Context) ([]pending.Item, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("%w: %w", pending.ErrUnavailable, ErrClosed)
	}
	now := s.cfg.Now()
	ids, err := s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: s.keys.pendingIndex, ByScore: true,
		Start: strconv.FormatInt(now.UnixMilli(), 10), Stop: "+inf",
	}).Result()
	if err != nil {
		return nil, unavailable(pending.ErrUnavailable, "list", err)
	}
	if len(ids) == 0 {
		return []pending.Item{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.keys.pendingItem + id
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable(pending.ErrUnavailable, "list", err)
	}
	items := make([]pending.Item, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // deleted or expired since the index was read
		}
		exp, env, err := decodeItem(str)
		if err != nil {
			return nil, unavailable(pending.ErrUnavailable, "list", err)
		}
		if exp > replay.UnixNano(now) {
			items = append(items, pending.Item{ID: ids[i], Envelope: env, ExpiresAt: time.Unix(0, exp)})
		}
	}
	slices.SortFunc(items, func(a, b pending.Item) int { return strings.Compare(a.ID, b.ID) })
	return items, nil
}

// Delete implements pending.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := pending.CheckID(id); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("%w: %w", pending.ErrUnavailable, ErrClosed)
	}
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.keys.pendingItem+id)
		p.ZRem(ctx, s.keys.pendingIndex, id)
		return nil
	})
	if err != nil {
		return unavailable(pending.ErrUnavailable, "delete", err)
	}
	return nil
}
