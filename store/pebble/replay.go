package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	pdb "github.com/cockroachdb/pebble"

	"github.com/trusthandoff/trusthandoff-go/replay"
)

type recordReq struct {
	ctx  context.Context
	key  []byte
	exp  int64
	now  int64
	resp chan recordResp // buffered: the committer never blocks on it
}

// recordReqs recycles requests (and their answer channels). A request goes back only
// once its answer was received, or when it never reached the committer; one abandoned
// by a cancelled caller is left to the garbage collector.
var recordReqs = sync.Pool{New: func() any { return &recordReq{resp: make(chan recordResp, 1)} }}

func (r *recordReq) recycle() {
	r.ctx = nil
	recordReqs.Put(r)
}

type recordResp struct {
	fresh bool
	err   error
}

type sweepResult struct {
	deleted int
	err     error
}

// Record implements replay.Store. A fresh=true answer has been synced to disk.
func (s *Store) Record(ctx context.Context, key []byte, expiresAt time.Time) (bool, error) {
	if err := replay.CheckKey(key); err != nil {
		return false, err
	}
	r := recordReqs.Get().(*recordReq)
	r.ctx, r.key = ctx, append(r.key[:0], key...)
	r.exp, r.now = replay.UnixNano(expiresAt), replay.UnixNano(s.cfg.Now())
	select {
	case s.reqs <- r:
	case <-s.quit:
		r.recycle()
		return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ErrClosed)
	case <-ctx.Done():
		r.recycle()
		return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ctx.Err())
	}
	select {
	case resp := <-r.resp:
		r.recycle() // answered: the committer and the syncer are done with it
		return resp.fresh, resp.err
	case <-s.done:
		select { // the committer may have answered just before exiting
		case resp := <-r.resp:
			return resp.fresh, resp.err
		default:
			return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ErrClosed)
		}
	case <-ctx.Done():
		// The key may still be recorded; failing now is failing closed.
		return false, fmt.Errorf("%w: %w", replay.ErrUnavailable, ctx.Err())
	}
}

// Seen reports whether key is recorded and live, without recording it (dry runs).
func (s *Store) Seen(_ context.Context, key []byte) (bool, error) {
	if err := replay.CheckKey(key); err != nil {
		return false, err
	}
	now := replay.UnixNano(s.cfg.Now())
	var live bool
	err := s.use(func(db *pdb.DB) error {
		stored, found, err := getTime(db, nonceKey(key), nil)
		live = found && stored > now
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%w: store/pebble: read nonce: %w", replay.ErrUnavailable, err)
	}
	return live, nil
}

// Sweep deletes every expired nonce and pending item now and reports how many
// it deleted. The background sweep calls the same code.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	reply := make(chan sweepResult, 1)
	select {
	case s.sweep <- reply:
	case <-s.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.deleted, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// commitLoop is the only writer of nonces: it group-commits Records and runs
// the sweep between groups.
func (s *Store) commitLoop() {
	defer close(s.syncs) // the syncer answers what is left, then closes done
	var tick <-chan time.Time
	if s.cfg.SweepInterval > 0 {
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		tick = t.C
	}
	c := committer{s: s, seen: make(map[string]int64)}
	sweeping := false // expired entries remain after the last sweep step
	for {
		if sweeping {
			select {
			case r := <-s.reqs:
				c.commit(r)
			case <-s.quit:
				c.drain()
				return
			default:
				n, err := c.sweepStep()
				sweeping = err == nil && n >= sweepChunk
			}
			continue
		}
		select {
		case r := <-s.reqs:
			c.commit(r)
		case <-tick:
			n, err := c.sweepStep()
			sweeping = err == nil && n >= sweepChunk
		case reply := <-s.sweep:
			total := 0
			for {
				n, err := c.sweepStep()
				total += n
				if err != nil || n < sweepChunk {
					reply <- sweepResult{total, err}
					break
				}
			}
		case <-s.quit:
			c.drain()
			return
		}
	}
}

type committer struct {
	s     *Store
	group []*recordReq
	seen  map[string]int64 // key → expiry of keys written by the current group
}

// drain answers every Record still queued at Close.
func (c *committer) drain() {
	for {
		select {
		case r := <-c.s.reqs:
			c.commit(r)
		default:
			return
		}
	}
}

// commit decides first and every request queued behind it, writes the fresh
// ones in one batch, syncs it, and answers.
func (c *committer) commit(first *recordReq) {
	c.group = append(c.group[:0], first)
	for len(c.group) < c.s.cfg.MaxBatch {
		select {
		case r := <-c.s.reqs:
			c.group = append(c.group, r)
			continue
		default:
		}
		break
	}
	clear(c.seen)
	db := c.s.db // the committer runs strictly before Close closes db
	b := db.NewBatch()
	defer b.Close()
	resps := make([]recordResp, len(c.group))
	writes := false
	for i, r := range c.group {
		if err := r.ctx.Err(); err != nil {
			resps[i].err = fmt.Errorf("%w: %w", replay.ErrUnavailable, err)
			continue // the caller has gone; do not record a key nobody was told about
		}
		if exp, ok := c.seen[string(r.key)]; ok && exp > r.now {
			continue // an earlier request in this group recorded it
		}
		stored, found, err := getTime(db, nonceKey(r.key), nil)
		if err != nil {
			resps[i].err = fmt.Errorf("%w: store/pebble: read nonce: %w", replay.ErrUnavailable, err)
			continue
		}
		if found && stored > r.now {
			continue // live: a replay
		}
		resps[i].fresh = true
		if r.exp <= r.now {
			continue // outside its window already: nothing to store
		}
		if found { // expired but not yet swept: drop its index entry
			if err := b.Delete(expiryKey(stored, r.key), nil); err != nil {
				resps[i] = recordResp{err: fmt.Errorf("%w: store/pebble: %w", replay.ErrUnavailable, err)}
				continue
			}
		}
		err = errors.Join(
			b.Set(nonceKey(r.key), encodeTime(nil, r.exp), nil),
			b.Set(expiryKey(r.exp, r.key), nil, nil))
		if err != nil {
			resps[i] = recordResp{err: fmt.Errorf("%w: store/pebble: %w", replay.ErrUnavailable, err)}
			continue
		}
		c.seen[string(r.key)] = r.exp
		writes = true
	}
	if writes {
		// Apply now (visible to the next group's checks) and let the syncer
		// fsync: deciding group N+1 overlaps with syncing group N.
		if err := b.Commit(pdb.NoSync); err != nil {
			failFresh(c.group, resps, fmt.Errorf("%w: store/pebble: commit: %w", replay.ErrUnavailable, err))
		} else {
			c.s.syncs <- syncJob{reqs: slices.Clone(c.group), resps: resps}
			clear(c.group)
			return
		}
	}
	for i, r := range c.group {
		r.resp <- resps[i]
		c.group[i] = nil
	}
}

// failFresh turns every fresh answer that wrote a key into err.
func failFresh(group []*recordReq, resps []recordResp, err error) {
	for i, r := range group {
		if resps[i].fresh && r.exp > r.now {
			resps[i] = recordResp{err: err}
		}
	}
}

// syncJob is a group applied without sync, to be answered once the WAL is
// synced.
type syncJob struct {
	reqs  []*recordReq
	resps []recordResp
}

// syncLoop syncs the WAL once for every job queued at that moment and then
// answers their Records: no fresh=true leaves before its key is on disk. It
// exits when the committer closes syncs.
func (s *Store) syncLoop() {
	defer close(s.done)
	var jobs []syncJob
	for job := range s.syncs {
		jobs = append(jobs[:0], job)
	more:
		for {
			select {
			case j, ok := <-s.syncs:
				if !ok {
					break more
				}
				jobs = append(jobs, j)
			default:
				break more
			}
		}
		// A synced write waits for the WAL to be synced up to and including
		// itself, which covers every batch committed before it.
		if err := s.db.LogData(nil, pdb.Sync); err != nil {
			err = fmt.Errorf("%w: store/pebble: sync: %w", replay.ErrUnavailable, err)
			for _, j := range jobs {
				failFresh(j.reqs, j.resps, err)
			}
		}
		for _, j := range jobs {
			for i, r := range j.reqs {
				r.resp <- j.resps[i]
			}
		}
	}
}

// sweepStep deletes up to sweepChunk expired nonces (and, when it finishes
// the nonces, every expired pending item) and reports how many index entries
// it removed.
func (c *committer) sweepStep() (int, error) {
	db := c.s.db
	now := replay.UnixNano(c.s.cfg.Now())
	upper := prefixEnd(prefixExpiry)
	if now < maxTime {
		upper = encodeTime([]byte(prefixExpiry), now+1)
	}
	it, err := db.NewIter(&pdb.IterOptions{LowerBound: []byte(prefixExpiry), UpperBound: upper})
	if err != nil {
		return 0, err
	}
	b := db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid() && n < sweepChunk; it.Next() {
		k := it.Key()
		exp, err := decodeTime(k[len(prefixExpiry):])
		if err != nil {
			continue
		}
		key := k[len(prefixExpiry)+8:]
		if stored, found, err := getTime(db, nonceKey(key), nil); err == nil && found && stored == exp {
			_ = b.Delete(nonceKey(key), nil)
		}
		_ = b.Delete(append([]byte(nil), k...), nil)
		n++
	}
	err = errors.Join(it.Error(), it.Close())
	if err == nil && !b.Empty() {
		// Losing a deletion in a crash only means sweeping it again.
		err = b.Commit(pdb.NoSync)
	}
	if err != nil {
		return n, fmt.Errorf("store/pebble: sweep: %w", err)
	}
	if n < sweepChunk {
		m, err := c.s.sweepPending(now)
		return n + m, err
	}
	return n, nil
}

var _ replay.Peeker = (*Store)(nil)
