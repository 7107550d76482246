// Package redis is the shared state backend for many verifying nodes: replay
// keys with SET NX PX, revocations pushed to every node over pub/sub, and
// pending handoffs, all in one Redis. See README.md for the key layout.
//
// Everything fails closed: every Redis error is reported as an error wrapping
// the interface's ErrUnavailable. Revoked answers from a local cache fed by a
// subscription; while the subscription is down, not yet synced, or silent for
// longer than StaleAfter, Revoked fails rather than answer from a cache that
// may miss a revocation. On every (re)subscription the cache is resynced from
// the revocation hash, revocations the cache did not have are delivered to
// watchers, and revocations the cache has but Redis lost (a restart without
// persistence) are written back.
//
// With WaitReplicas set, Record also waits for that many replicas to
// acknowledge the nonce, so a failover cannot forget an accepted nonce.
//
// ParseURL turns a redis:// or rediss:// URL into a Config; rediss:// means
// TLS with certificate verification, never a silent plaintext fallback. No
// error or log line of this package contains the Redis password.
package redis

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/trusthandoff/trusthandoff-go/internal/fanout"
	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// ErrClosed is wrapped by errors from a closed Store (together with the
// interface's ErrUnavailable).
var ErrClosed = errors.New("store/redis: store closed")

// Config configures Open. Addr is required; other zero fields take defaults.
type Config struct {
	// Addr is the Redis server's "host:port".
	Addr string
	// Username, Password and DB select the Redis user and database. The
	// password never appears in errors, logs or the Config's String form.
	Username string
	Password string
	DB       int
	// TLSConfig, when non-nil, makes every connection TLS with this
	// configuration (ParseURL sets it for rediss://). A nil TLSConfig is
	// plaintext.
	TLSConfig *tls.Config
	// Prefix is prepended to every key and channel (default "trusthandoff:").
	// Stores that share a prefix share state.
	Prefix string

	// DialTimeout, ReadTimeout and WriteTimeout bound each Redis operation
	// (default 500 ms each), so an unreachable Redis fails closed quickly.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the connection pool size (default: go-redis's, 10 per CPU).
	PoolSize int

	// WaitReplicas, when positive, makes Record issue WAIT after a fresh SET
	// and fail (ErrUnavailable) if fewer replicas acknowledged it within
	// WaitTimeout (default 100 ms).
	WaitReplicas int
	WaitTimeout  time.Duration

	// HealthInterval is how long the revocation subscription may be silent
	// before it is pinged (default 1 s). StaleAfter is how long without any
	// word from it makes Revoked fail (default 3 × HealthInterval).
	HealthInterval time.Duration
	StaleAfter     time.Duration

	// Now is the clock for TTLs and default revocation times (default time.Now).
	Now func() time.Time
	// WatchBuffer is how far a revocation watcher may fall behind before its
	// channel is closed (default revocation.DefaultWatchBuffer).
	WatchBuffer int
	// Logger receives subscription state changes (default: discarded).
	Logger *slog.Logger
}

// ErrURL is wrapped by every ParseURL error.
var ErrURL = errors.New("store/redis: invalid Redis URL")

// urlForm is the shape ParseURL accepts, for error messages.
const urlForm = "want redis://[user:password@]host[:port][/db] or rediss://… for TLS"

// ParseURL parses redis://[user[:password]@]host[:port][/db] (plaintext) or
// rediss://… (TLS, verified against the system roots with the URL's host as
// server name; set TLSConfig.RootCAs to trust a private CA). The port
// defaults to 6379 and the database to 0.
//
// It is stricter than go-redis's own parser: query parameters are refused
// (timeouts, retries and pool sizes are the Store's; an option such as
// skip_verify would turn TLS verification off), and so are fragments, unix://
// and a missing host. Errors wrap ErrURL and never contain the URL: a URL
// that fails to parse may have its password anywhere in it.
func ParseURL(rawURL string) (Config, error) {
	fail := func(why string) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s (the URL is not shown: it may hold a password); %s", ErrURL, why, urlForm)
	}
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return fail("it does not parse as a URL")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fail("the scheme is not redis:// or rediss://")
	case u.Opaque != "":
		return fail("it has no // after the scheme")
	case u.Hostname() == "":
		return fail("it names no host")
	case u.RawQuery != "" || u.ForceQuery:
		if q, err := url.ParseQuery(u.RawQuery); err == nil && q.Has("skip_verify") {
			return fail("TLS certificate verification cannot be turned off (skip_verify)")
		}
		return fail("query parameters are not supported")
	case u.Fragment != "" || strings.Contains(rawURL, "#"):
		return fail("it has a #fragment")
	}
	if host := u.Hostname(); strings.Contains(host, ":") && (net.ParseIP(host) == nil || !strings.HasPrefix(u.Host, "[")) {
		return fail("the host is neither a name nor an address ([…] around IPv6)")
	}
	if strings.HasSuffix(u.Host, ":") {
		return fail("the port is not a number from 1 to 65535")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("the port is not a number from 1 to 65535")
		}
	}
	db := 0
	if path := strings.TrimPrefix(u.Path, "/"); path != "" {
		n, err := strconv.Atoi(path)
		if err != nil || n < 0 || strconv.Itoa(n) != path {
			return fail("the path is not /DB with DB a database number")
		}
		db = n
	}
	opt, err := goredis.ParseURL(rawURL)
	if err != nil { // go-redis's message may quote parts of the URL
		return fail("go-redis refuses it")
	}
	if opt.Network != "tcp" || opt.DB != db || (u.Scheme == "rediss") != (opt.TLSConfig != nil) {
		return fail("go-redis reads it differently") // unreachable with the checks above
	}
	cfg := Config{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: db}
	if u.Scheme == "rediss" {
		cfg.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return cfg, nil
}

// String describes the connection as a URL without the password, so a Config
// printed with %v or %+v, or logged, cannot leak it.
func (c Config) String() string {
	u := url.URL{Scheme: "redis", Host: c.Addr, Path: "/" + strconv.Itoa(c.DB)}
	if c.TLSConfig != nil {
		u.Scheme = "rediss"
	}
	switch {
	case c.Password != "":
		u.User = url.UserPassword(c.Username, "xxxxx")
	case c.Username != "":
		u.User = url.User(c.Username)
	}
	return u.String()
}

// GoString is String, for %#v.
func (c Config) GoString() string { return "redis.Config(" + strconv.Quote(c.String()) + ")" }

// LogValue is String, for log/slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Store is a replay, revocation and pending store on Redis. It is safe for
// concurrent use; many Stores (on many nodes) may share one Redis.
type Store struct {
	cfg    Config
	client *goredis.Client
	keys   keyspace
	hub    *fanout.Hub[revocation.Entry]
	log    *slog.Logger

	mu        sync.RWMutex
	revs      map[revKey]revocation.Entry
	synced    bool
	lastHeard time.Time // real time of the last word from the subscription
	closed    bool

	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ replay.Store     = (*Store)(nil)
	_ revocation.Store = (*Store)(nil)
	_ pending.Store    = (*Store)(nil)
)

type revKey struct {
	kind revocation.Kind
	id   string
}

// keyspace holds the Redis names under the configured prefix.
type keyspace struct {
	replay       string // + hex(key)
	revocations  string // hash: kind ":" id → Unix nanoseconds
	events       string // pub/sub channel of revocations
	pendingItem  string // + id → time + envelope
	pendingIndex string // sorted set: id scored by expiry (ms)
}

func newKeyspace(prefix string) keyspace {
	return keyspace{
		replay:       prefix + "replay:",
		revocations:  prefix + "revocations",
		events:       prefix + "revocations:events",
		pendingItem:  prefix + "pending:item:",
		pendingIndex: prefix + "pending:index",
	}
}

const defaultTimeout = 500 * time.Millisecond

// Open validates cfg, connects lazily and starts the revocation subscription.
// It does not wait for Redis: until the subscription has synced, Revoked
// fails closed (use Ready to wait).
func Open(cfg Config) (*Store, error) {
	if cfg.Addr == "" {
		return nil, errors.New("store/redis: Config.Addr is required")
	}
	var tlsConfig *tls.Config
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
		if tlsConfig.ServerName == "" {
			if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
				tlsConfig.ServerName = host
			}
		}
		if tlsConfig.MinVersion < tls.VersionTLS12 {
			tlsConfig.MinVersion = tls.VersionTLS12
		}
	}
	if cfg.WaitReplicas < 0 {
		return nil, fmt.Errorf("store/redis: Config.WaitReplicas is %d, want >= 0", cfg.WaitReplicas)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "trusthandoff:"
	}
	for _, d := range []*time.Duration{&cfg.DialTimeout, &cfg.ReadTimeout, &cfg.WriteTimeout} {
		if *d <= 0 {
			*d = defaultTimeout
		}
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 100 * time.Millisecond
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 3 * cfg.HealthInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = revocation.DefaultWatchBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	readTimeout := cfg.ReadTimeout
	if cfg.WaitReplicas > 0 {
		// WAIT blocks for up to WaitTimeout in a pipeline read.
		readTimeout += cfg.WaitTimeout
	}
	client := goredis.NewClient(&goredis.Options{
		Addr:                  cfg.Addr,
		Username:              cfg.Username,
		Password:              cfg.Password,
		DB:                    cfg.DB,
		TLSConfig:             tlsConfig,
		Protocol:              2,
		DialTimeout:           cfg.DialTimeout,
		DialerRetries:         1, // fail closed at once; the caller's next request dials again
		ReadTimeout:           readTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		PoolSize:              cfg.PoolSize,
		MaxRetries:            -1, // a retried SET NX could report its own write as a replay; callers retry
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cfg:    cfg,
		client: client,
		keys:   newKeyspace(cfg.Prefix),
		hub:    fanout.New[revocation.Entry](cfg.WatchBuffer),
		log:    cfg.Logger.With("addr", cfg.Addr),
		revs:   make(map[revKey]revocation.Entry),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go s.subscribeLoop(ctx)
	return s, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store/redis: ping %s: %w", s.cfg.Addr, err)
	}
	return nil
}

// Ready waits until the revocation cache is synced (Revoked can answer) or
// ctx ends.
func (s *Store) Ready(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := s.health(); err == nil {
			return nil
		} else if errors.Is(err, ErrClosed) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store/redis: not ready: %w", s.health())
		case <-t.C:
		}
	}
}

// Close stops the subscription, closes watchers and the connection pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.hub.Close()
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("store/redis: close: %w", err)
	}
	return nil
}

// Record implements replay.Store with SET key 1 NX PX ttl (and WAIT).
func (s *Store) Record(ctx context.Context, key []byte, expiresAt time.Time) (bool, error) {
	if err := replay.CheckKey(key); err != nil {
		return false, err
	}
	if s.isClosed() {
		return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ErrClosed)
	}
	k := s.keys.replay + hex.EncodeToString(key)
	ttl := expiresAt.Sub(s.cfg.Now())
	if ttl <= 0 { // outside its window: report, store nothing
		n, err := s.client.Exists(ctx, k).Result()
		if err != nil {
			return false, unavailable(replay.ErrUnavailable, "record", err)
		}
		return n == 0, nil
	}
	// Round up: keeping a key a little longer only ever rejects more.
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	args := goredis.SetArgs{Mode: "NX", TTL: ttl}
	if s.cfg.WaitReplicas == 0 {
		err := s.client.SetArgs(ctx, k, 1, args).Err()
		switch {
		case errors.Is(err, goredis.Nil):
			return false, nil
		case err != nil:
			return false, unavailable(replay.ErrUnavailable, "record", err)
		}
		return true, nil
	}
	// WAIT counts acknowledgements of this connection's writes, so SET and
	// WAIT must share a connection: one pipeline.
	pipe := s.client.Pipeline()
	set := pipe.SetArgs(ctx, k, 1, args)
	wait := pipe.Do(ctx, "wait", s.cfg.WaitReplicas, s.cfg.WaitTimeout.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return false, unavailable(replay.ErrUnavailable, "record", err)
	}
	if errors.Is(set.Err(), goredis.Nil) {
		return false, nil
	}
	if err := errors.Join(set.Err(), wait.Err()); err != nil {
		return false, unavailable(replay.ErrUnavailable, "record", err)
	}
	n, err := wait.Int64()
	if err != nil {
		return false, unavailable(replay.ErrUnavailable, "record: wait", err)
	}
	if n < int64(s.cfg.WaitReplicas) {
		return false, fmt.Errorf("%w: store/redis: nonce acknowledged by %d of %d replicas within %v",
			replay.ErrUnavailable, n, s.cfg.WaitReplicas, s.cfg.WaitTimeout)
	}
	return true, nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// unavailable wraps a Redis error in the interface's sentinel.
func unavailable(sentinel error, op string, err error) error {
	return fmt.Errorf("%w: store/redis: %s: %w", sentinel, op, err)
}
