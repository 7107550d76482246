// Package pebble is the embedded durable state backend: one directory, one
// process, no acknowledged nonce lost on kill -9. A single
// [Store] implements replay.Store, revocation.Store and pending.Store on a
// Pebble (LSM) database; see README.md for the key layout.
//
// Replay records are group-committed: Record hands its key to a single
// committer goroutine, which takes every request queued at that moment,
// decides each against the database and against the rest of the group (the
// first of two identical keys wins) and applies one batch; a syncer goroutine
// then syncs the write-ahead log once for every group applied so far and only
// then answers. A fresh=true answer is therefore durable, concurrent callers
// share the cost of an fsync, the next group is decided while the previous one
// is being synced, and record-if-new is atomic because only the committer
// writes nonces. Expired nonces are deleted by a periodic sweep
// of an expiry-ordered index, also run by the committer.
//
// Watch is in-process: revocations are delivered to watchers of the same
// Store, which is the only Store that can have the directory open.
package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"time"

	pdb "github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/trusthandoff/trusthandoff-go/internal/fanout"
	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

var (
	// ErrLocked reports that another process (or another Store in this
	// process) has the directory open.
	ErrLocked = errors.New("store/pebble: directory is in use by another process or Store")
	// ErrClosed is wrapped by errors from a closed Store. Those errors also
	// wrap the ErrUnavailable of the interface that was called.
	ErrClosed = errors.New("store/pebble: store closed")
)

// Config configures Open. The zero value is usable.
type Config struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SweepInterval is how often expired nonces and pending items are
	// deleted (default 1 minute). Negative disables the background sweep;
	// Sweep still works.
	SweepInterval time.Duration
	// MaxBatch bounds how many Records share one synced batch (default 1024).
	MaxBatch int
	// WatchBuffer is how far a revocation watcher may fall behind before its
	// channel is closed (default revocation.DefaultWatchBuffer).
	WatchBuffer int
}

const (
	defaultSweepInterval = time.Minute
	defaultMaxBatch      = 1024
	sweepChunk           = 4096     // index entries deleted per sweep step
	cacheSize            = 64 << 20 // block cache
)

// Store is a durable replay, revocation and pending store in one directory.
type Store struct {
	cfg  Config
	dir  string
	db   *pdb.DB
	lock *pdb.Lock

	reqs  chan *recordReq
	sweep chan chan sweepResult
	syncs chan syncJob // committer → syncer: groups applied, awaiting fsync
	quit  chan struct{}
	done  chan struct{} // closed when the committer and the syncer have exited

	// mu guards db against use after Close (Pebble panics on a closed DB).
	mu     sync.RWMutex
	closed bool

	revMu sync.Mutex // serialises Revoke's check-then-write
	// revoked mirrors every r/ record (key → revocation time): the directory lock makes
	// this Store the only writer, so the copy is exact, and Revoked, asked at every
	// verification, reads memory instead of the database.
	revoked *sync.Map
	penMu   sync.Mutex // serialises pending writes with the pending sweep
	hub     *fanout.Hub[revocation.Entry]
}

var (
	_ replay.Store     = (*Store)(nil)
	_ revocation.Store = (*Store)(nil)
	_ pending.Store    = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir. It fails with an error
// wrapping ErrLocked when the directory is already open.
func Open(dir string, cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = defaultSweepInterval
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = revocation.DefaultWatchBuffer
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store/pebble: create %s: %w", dir, err)
	}
	// Take the lock ourselves first so that a held lock gets a clear error.
	lock, err := pdb.LockDirectory(dir, vfs.Default)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("store/pebble: lock %s: %w", dir, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
	}
	opts := options(lock)
	db, err := pdb.Open(dir, opts)
	opts.Cache.Unref() // the database holds its own reference
	revoked := new(sync.Map)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("store/pebble: open %s: %w", dir, err)
	}
	if err := loadRevoked(db, revoked); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("store/pebble: open %s: read revocations: %w", dir, err)
	}
	s := &Store{
		cfg:   cfg,
		dir:   dir,
		db:    db,
		lock:  lock,
		reqs:  make(chan *recordReq, cfg.MaxBatch),
		sweep: make(chan chan sweepResult),
		syncs: make(chan syncJob, 64),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		hub:   fanout.New[revocation.Entry](cfg.WatchBuffer),

		revoked: revoked,
	}
	go s.commitLoop()
	go s.syncLoop()
	return s, nil
}

// Close stops the committer (answering queued Records), closes watchers,
// flushes the memtable and closes the database. Later calls fail with
// ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	s.hub.Close()
	// Readers hold mu.RLock around every use of db; taking the write lock
	// waits for them. closed is already set, so no new ones start.
	s.mu.Lock()
	defer s.mu.Unlock()
	ferr := s.db.Flush()
	cerr := s.db.Close()
	lerr := s.lock.Close()
	if err := errors.Join(ferr, cerr, lerr); err != nil {
		return fmt.Errorf("store/pebble: close %s: %w", s.dir, err)
	}
	return nil
}

// use runs fn with the database, or returns ErrClosed.
func (s *Store) use(fn func(db *pdb.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return fn(s.db)
}

// Key layout (README.md).
const (
	prefixNonce   = "n/" // n/<key> → expiry
	prefixExpiry  = "x/" // x/<expiry><key> → empty: nonces in expiry order
	prefixRevoked = "r/" // r/<kind>/<id> → revocation time
	prefixPending = "p/" // p/<id> → expiry, envelope
)

// encodeTime encodes Unix nanoseconds so that byte order is time order.
func encodeTime(dst []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ns)^(1<<63))
}

func decodeTime(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("store/pebble: corrupt record: %d-byte time", len(b))
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), nil
}

func nonceKey(key []byte) []byte {
	return append([]byte(prefixNonce), key...)
}

func expiryKey(exp int64, key []byte) []byte {
	b := make([]byte, 0, len(prefixExpiry)+8+len(key))
	return append(encodeTime(append(b, prefixExpiry...), exp), key...)
}

func revokedKey(kind revocation.Kind, id string) []byte {
	return []byte(prefixRevoked + string(kind) + "/" + id)
}

func pendingKey(id string) []byte { return []byte(prefixPending + id) }

// prefixEnd returns the first key after every key with prefix p (p's last
// byte is '/', so incrementing it cannot overflow).
func prefixEnd(p string) []byte {
	b := []byte(p)
	b[len(b)-1]++
	return b
}

// options are the Pebble options of a store. Every level's tables carry a Bloom filter:
// nearly every lookup of a verification misses (a fresh nonce, an agent nobody revoked),
// and without filters a miss reads every table that overlaps the key. The block cache
// (64 MiB; Pebble's default is 8) keeps those filters and the index blocks in memory:
// with the default, a nonce lookup of a busy sidecar re-read blocks with pread. The caller
// unreferences Cache once the database is open.
func options(lock *pdb.Lock) *pdb.Options {
	o := &pdb.Options{Lock: lock, Logger: quietLogger{}, Levels: make([]pdb.LevelOptions, 7),
		Cache: pdb.NewCache(cacheSize)}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o.EnsureDefaults()
}

// loadRevoked copies every revocation record of db into m.
func loadRevoked(db *pdb.DB, m *sync.Map) error {
	it, err := db.NewIter(&pdb.IterOptions{LowerBound: []byte(prefixRevoked), UpperBound: prefixEnd(prefixRevoked)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		at, err := decodeTime(it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		m.Store(string(it.Key()), at)
	}
	return it.Close()
}

// getTime reads a value that starts with an encoded time; the rest of the
// value is copied into rest when rest is non-nil.
func getTime(db *pdb.DB, k []byte, rest *[]byte) (ns int64, found bool, err error) {
	v, closer, err := db.Get(k)
	if errors.Is(err, pdb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	ns, err = decodeTime(v)
	if err != nil {
		return 0, false, err
	}
	if rest != nil {
		*rest = append([]byte(nil), v[8:]...)
	}
	return ns, true, nil
}

// quietLogger drops Pebble's informational logging; fatal errors still end
// the process, as Pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Fatalf(format string, args ...any) { pdb.DefaultLogger.Fatalf(format, args...) }

// maxTime is used for "no upper bound" in expiry scans.
const maxTime = math.MaxInt64
