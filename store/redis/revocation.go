package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// revokeScript records a revocation if (kind, id) has none and publishes it
// in the same atomic step, so no revocation is stored without its push.
// KEYS[1] hash, KEYS[2] channel; ARGV[1] field, ARGV[2] time, ARGV[3] message.
var revokeScript = goredis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0`)

// message is a revocation on the pub/sub channel.
type message struct {
	Kind revocation.Kind `json:"kind"`
	ID   string          `json:"id"`
	At   int64           `json:"at"` // Unix nanoseconds
}

func field(kind revocation.Kind, id string) string { return string(kind) + ":" + id }

func parseField(f, at string) (revocation.Entry, error) {
	kind, id, ok := strings.Cut(f, ":")
	if !ok {
		return revocation.Entry{}, fmt.Errorf("revocation field %q has no kind", f)
	}
	ns, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return revocation.Entry{}, fmt.Errorf("revocation %q: time %q: %w", f, at, err)
	}
	if err := revocation.Check(revocation.Kind(kind), id); err != nil {
		return revocation.Entry{}, err
	}
	return revocation.Entry{Kind: revocation.Kind(kind), ID: id, At: time.Unix(0, ns)}, nil
}

// Revoke implements revocation.Store: HSETNX into the revocation hash and
// PUBLISH to every node, atomically.
func (s *Store) Revoke(ctx context.Context, e revocation.Entry) error {
	if err := revocation.Check(e.Kind, e.ID); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("%w: %w", revocation.ErrUnavailable, ErrClosed)
	}
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	e.At = time.Unix(0, replay.UnixNano(e.At))
	added, err := s.revokeRemote(ctx, e)
	if err != nil {
		return unavailable(revocation.ErrUnavailable, "revoke", err)
	}
	if !added {
		// Another call got there first: learn its time for the cache.
		at, err := s.client.HGet(ctx, s.keys.revocations, field(e.Kind, e.ID)).Result()
		if err != nil {
			return unavailable(revocation.ErrUnavailable, "revoke", err)
		}
		if e, err = parseField(field(e.Kind, e.ID), at); err != nil {
			return unavailable(revocation.ErrUnavailable, "revoke", err)
		}
	}
	s.learn(e) // read-your-writes, even before our own push comes back
	return nil
}

func (s *Store) revokeRemote(ctx context.Context, e revocation.Entry) (bool, error) {
	msg, err := json.Marshal(message{Kind: e.Kind, ID: e.ID, At: e.At.UnixNano()})
	if err != nil {
		return false, err
	}
	n, err := revokeScript.Run(ctx, s.client,
		[]string{s.keys.revocations, s.keys.events},
		field(e.Kind, e.ID), strconv.FormatInt(e.At.UnixNano(), 10), string(msg)).Int()
	return n == 1, err
}

// learn adds e to the cache unless (kind, id) is there already, and delivers
// it to watchers if it was new. It reports whether e was new.
func (s *Store) learn(e revocation.Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock() // held while publishing so watchers see one order
	k := revKey{e.Kind, e.ID}
	if _, ok := s.revs[k]; ok {
		return false
	}
	s.revs[k] = e
	s.hub.Publish(e)
	return true
}

// Revoked implements revocation.Store from the local cache, failing closed
// while the subscription that keeps it current is down, unsynced or stale.
func (s *Store) Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error) {
	if err := revocation.Check(kind, id); err != nil {
		return revocation.Entry{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.healthLocked(); err != nil {
		return revocation.Entry{}, false, err
	}
	e, ok := s.revs[revKey{kind, id}]
	return e, ok, nil
}

// Watch implements revocation.Store: it delivers revocations made by any
// node, including those the subscription missed while down (found by the
// resync when it comes back).
func (s *Store) Watch(ctx context.Context) (<-chan revocation.Entry, error) {
	ch, err := s.hub.Subscribe(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", revocation.ErrUnavailable, ErrClosed)
	}
	return ch, nil
}

func (s *Store) health() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.healthLocked()
}

func (s *Store) healthLocked() error {
	switch {
	case s.closed:
		return fmt.Errorf("%w: %w", revocation.ErrUnavailable, ErrClosed)
	case !s.synced:
		return fmt.Errorf("%w: store/redis: revocation subscription to %s is not synced", revocation.ErrUnavailable, s.cfg.Addr)
	}
	if silent := time.Since(s.lastHeard); silent > s.cfg.StaleAfter {
		return fmt.Errorf("%w: store/redis: revocation subscription to %s silent for %v", revocation.ErrUnavailable, s.cfg.Addr, silent.Round(time.Millisecond))
	}
	return nil
}

func (s *Store) setSynced(synced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synced = synced
	if synced {
		s.lastHeard = time.Now()
	}
}

func (s *Store) heard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastHeard = time.Now()
}

// subscribeLoop keeps the revocation subscription up until ctx ends.
func (s *Store) subscribeLoop(ctx context.Context) {
	defer close(s.done)
	const minBackoff, maxBackoff = 20 * time.Millisecond, time.Second
	backoff := minBackoff
	for {
		start := time.Now()
		err := s.subscribeOnce(ctx)
		s.setSynced(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("revocation subscription lost; Revoked fails closed until it is back", "err", err)
		if time.Since(start) > 10*time.Second {
			backoff = minBackoff // it was up for a while: retry promptly
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// subscribeOnce subscribes, resyncs when the subscription is confirmed, and
// applies pushed revocations until the connection fails or goes silent.
func (s *Store) subscribeOnce(ctx context.Context) error {
	ps := s.client.Subscribe(ctx, s.keys.events)
	defer ps.Close()
	// Reads do not watch ctx; closing the connection ends a blocked read.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	pinged := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.HealthInterval)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Silent: ask for a PONG; a second silence means the
				// connection is dead even if TCP has not noticed.
				if err := ps.Ping(ctx); err != nil {
					return fmt.Errorf("ping: %w", err)
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				if err := s.resync(ctx); err != nil {
					return fmt.Errorf("resync: %w", err)
				}
				s.log.Info("revocation subscription synced")
			}
		case *goredis.Message:
			var rm message
			if err := json.Unmarshal([]byte(m.Payload), &rm); err != nil {
				s.log.Warn("ignoring malformed revocation message", "err", err)
				break
			}
			if err := revocation.Check(rm.Kind, rm.ID); err != nil {
				s.log.Warn("ignoring invalid revocation message", "err", err)
				break
			}
			s.learn(revocation.Entry{Kind: rm.Kind, ID: rm.ID, At: time.Unix(0, rm.At)})
		}
		s.heard()
	}
}

// resync loads the whole revocation hash into the cache (delivering entries
// the cache lacked to watchers: they were missed while the subscription was
// down), writes back entries Redis lost, and marks the cache synced.
func (s *Store) resync(ctx context.Context) error {
	all, err := s.client.HGetAll(ctx, s.keys.revocations).Result()
	if err != nil {
		return err
	}
	remote := make(map[revKey]bool, len(all))
	for f, at := range all {
		e, err := parseField(f, at)
		if err != nil {
			s.log.Warn("ignoring malformed revocation", "field", f, "err", err)
			continue
		}
		remote[revKey{e.Kind, e.ID}] = true
		s.learn(e)
	}
	s.mu.RLock()
	var lost []revocation.Entry
	for k, e := range s.revs {
		if !remote[k] {
			lost = append(lost, e)
		}
	}
	s.mu.RUnlock()
	for _, e := range lost {
		if _, err := s.revokeRemote(ctx, e); err != nil {
			return fmt.Errorf("restore revocation %s %q: %w", e.Kind, e.ID, err)
		}
	}
	if len(lost) > 0 {
		s.log.Warn("restored revocations missing from Redis", "count", len(lost))
	}
	s.setSynced(true)
	return nil
}
