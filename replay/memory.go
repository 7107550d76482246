package replay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull reports that a Memory store holds MaxEntries live keys. It wraps
// ErrUnavailable: the store refuses new keys rather than evict a live one,
// because an evicted key could be replayed.
var ErrFull = fmt.Errorf("%w: memory store full", ErrUnavailable)

// MemoryConfig configures NewMemory. The zero value is usable.
type MemoryConfig struct {
	// MaxEntries bounds the number of live keys (default 1<<20). When that
	// many keys are live, Record fails with an error wrapping ErrFull.
	MaxEntries int
	// Now is the clock (default time.Now). Tests inject a fake clock.
	Now func() time.Time
	// Shards is the number of independently locked shards, rounded up to a
	// power of two between 1 and 256 (default 32).
	Shards int
}

const (
	defaultMaxEntries = 1 << 20
	defaultShards     = 32
	maxShards         = 256
)

// Memory is a bounded, expiring, in-memory Store. It is safe for concurrent
// use. Each Record costs O(1) expected time: a lookup in an open-addressing
// table plus an amortised O(1) share of expiring old keys. Expired keys are
// dropped exactly at their expiry (a key is never reported as a replay at or
// after its expiresAt, and expired keys never count against MaxEntries).
//
// Keys of exactly 32 bytes are stored as they are; other keys are first hashed
// to 32 bytes with SHA-256. A collision between the two can only make a fresh
// key look like a replay, never the reverse.
//
// Memory use is about 80 bytes per live key (see BENCHMARKS.md): each shard
// keeps a table of 40-byte slots (key and expiry) with one control byte each,
// and an expiry queue of 8-byte references grouped in ~1 s buckets.
type Memory struct {
	now    func() time.Time
	max    int64
	live   atomic.Int64 // keys stored (each shard's count, summed)
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

var (
	_ Store  = (*Memory)(nil)
	_ Peeker = (*Memory)(nil)
)

// NewMemory returns an empty Memory store configured by cfg; zero or negative
// fields take their defaults.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := cfg.Shards
	switch {
	case n <= 0:
		n = defaultShards
	case n > maxShards:
		n = maxShards
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	return &Memory{
		now:    cfg.Now,
		max:    int64(cfg.MaxEntries),
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]shard, n),
	}
}

// Record implements Store. It never blocks on I/O and ignores ctx.
func (m *Memory) Record(_ context.Context, key []byte, expiresAt time.Time) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	k := fixedKey(key)
	h := maphash.Bytes(m.seed, k[:])
	s := &m.shards[h&m.mask]
	exp := UnixNano(expiresAt)
	for attempt := 0; ; attempt++ {
		now := UnixNano(m.now())
		fresh, err := s.record(m, k, h, exp, now)
		if err == nil || attempt > 0 {
			return fresh, err
		}
		// Full: other shards may hold keys that expired since they were
		// last written to. Expire them and try once more.
		m.sweepAll(now)
	}
}

// Seen reports whether key is recorded and live, without recording it.
func (m *Memory) Seen(_ context.Context, key []byte) (bool, error) {
	if err := CheckKey(key); err != nil {
		return false, err
	}
	k := fixedKey(key)
	h := maphash.Bytes(m.seed, k[:])
	s := &m.shards[h&m.mask]
	now := UnixNano(m.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(k, h)
	return found && s.slots[i].exp > now, nil
}

// Len reports the number of live keys.
func (m *Memory) Len() int {
	m.sweepAll(UnixNano(m.now()))
	return int(m.live.Load())
}

func (m *Memory) sweepAll(now int64) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.sweep(now, &m.live)
		s.mu.Unlock()
	}
}

func fixedKey(key []byte) (k [32]byte) {
	if len(key) == len(k) {
		copy(k[:], key)
		return k
	}
	h := sha256.New()
	h.Write([]byte("trusthandoff replay key\x00"))
	h.Write(key)
	h.Sum(k[:0])
	return k
}

// Control bytes: ctrlEmpty ends a probe sequence, ctrlDeleted (a tombstone)
// does not; a full slot holds 0x80 | 7 bits of the key's hash.
const (
	ctrlEmpty   = 0x00
	ctrlDeleted = 0x01
	ctrlFull    = 0x80

	minCapacity = 16
)

type slot struct {
	key [32]byte
	exp int64 // Unix nanoseconds; the key is live while now < exp
}

type shard struct {
	mu    sync.Mutex
	ctrl  []byte
	slots []slot
	used  int // full slots and tombstones
	full  int
	q     expiryQueue
	_     [64]byte // keep neighbouring shards' locks on separate cache lines
}

func (s *shard) record(m *Memory, k [32]byte, h uint64, exp, now int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now, &m.live)
	i, found := s.find(k, h)
	if found {
		if s.slots[i].exp > now {
			return false, nil
		}
		// Unreachable after sweep (every stored expiry has a queue entry);
		// kept so that a bug here makes a key fresh only once it expired.
		if exp <= now {
			return true, nil
		}
		s.slots[i].exp = exp
		s.q.push(exp, uint32(i))
		return true, nil
	}
	if exp <= now {
		return true, nil // already outside its window: nothing to protect
	}
	if m.live.Add(1) > m.max {
		m.live.Add(-1)
		return false, fmt.Errorf("%w (%d live keys)", ErrFull, m.max)
	}
	if i < 0 || s.ctrl[i] == ctrlEmpty && s.used+1 > len(s.ctrl)-len(s.ctrl)/8 {
		s.rehash(m.seed, s.full+1)
		i, _ = s.find(k, h)
	}
	if s.ctrl[i] == ctrlEmpty {
		s.used++
	}
	s.full++
	s.ctrl[i] = tag(h)
	s.slots[i] = slot{key: k, exp: exp}
	s.q.push(exp, uint32(i))
	return true, nil
}

// find returns the slot holding k, or else the slot where k should be
// inserted (the first tombstone on its probe sequence, or the empty slot that
// ends it); i is -1 while the table is unallocated.
func (s *shard) find(k [32]byte, h uint64) (i int, found bool) {
	n := len(s.ctrl)
	if n == 0 {
		return -1, false
	}
	t := tag(h)
	hi, _ := bits.Mul64(h, uint64(n))
	insert := -1
	for i := int(hi); ; {
		switch c := s.ctrl[i]; {
		case c == ctrlEmpty:
			if insert < 0 {
				insert = i
			}
			return insert, false
		case c == ctrlDeleted:
			if insert < 0 {
				insert = i
			}
		case c == t && s.slots[i].key == k:
			return i, true
		}
		if i++; i == n {
			i = 0
		}
	}
}

func tag(h uint64) byte { return ctrlFull | byte(h>>8)&0x7f }

// rehash rebuilds the table sized for want live keys at a load of 7/12,
// dropping tombstones, and rebuilds the expiry queue for the new positions.
// Growth is 1.5x when the table is full of live keys, and the table shrinks
// when most of it was tombstones. All stored keys are live here: sweep ran.
func (s *shard) rehash(seed maphash.Seed, want int) {
	n := max(minCapacity, want*12/7+1)
	ctrl, slots := s.ctrl, s.slots
	s.ctrl = make([]byte, n)
	s.slots = make([]slot, n)
	s.q = expiryQueue{}
	s.used, s.full = 0, 0
	for j, c := range ctrl {
		if c < ctrlFull {
			continue
		}
		sl := slots[j]
		i, _ := s.find(sl.key, maphash.Bytes(seed, sl.key[:]))
		s.ctrl[i] = c
		s.slots[i] = sl
		s.used++
		s.full++
		s.q.push(sl.exp, uint32(i))
	}
}

// sweep deletes every key whose expiry is not after now.
func (s *shard) sweep(now int64, live *atomic.Int64) {
	s.q.expire(now, func(i uint32) {
		// The queue may hold stale references (to a slot that was since
		// rewritten); deleting only expired keys makes them harmless.
		if s.ctrl[i] >= ctrlFull && s.slots[i].exp <= now {
			s.ctrl[i] = ctrlDeleted
			s.full--
			live.Add(-1)
		}
	})
}

// bucketShift sets the expiry queue's bucket width: 2^30 ns, about 1.07 s.
const bucketShift = 30

// qent references a slot whose expiry is bucket<<bucketShift + off.
type qent struct {
	idx uint32
	off uint32
}

// expiryQueue orders slot references by expiry. References are appended to
// per-bucket lists in O(1); the bucket that contains "now" is turned into a
// min-heap by offset once, so keys expire exactly on time at O(log b) each,
// b being the (small) bucket size; whole past buckets are dropped in O(b).
type expiryQueue struct {
	buckets map[int64][]qent
	ids     []int64 // min-heap of the keys of buckets
	heaped  bool    // buckets[ids[0]] is heap-ordered
}

func (q *expiryQueue) push(exp int64, idx uint32) {
	b := exp >> bucketShift
	e := qent{idx: idx, off: uint32(exp & (1<<bucketShift - 1))}
	if q.buckets == nil {
		q.buckets = make(map[int64][]qent)
	}
	list, ok := q.buckets[b]
	if !ok {
		q.pushID(b)
	}
	list = append(list, e)
	if q.heaped && b == q.ids[0] {
		siftUp(list, len(list)-1)
	}
	q.buckets[b] = list
}

// expire calls fn for every reference with expiry <= now, removing it.
func (q *expiryQueue) expire(now int64, fn func(uint32)) {
	for len(q.ids) > 0 {
		b := q.ids[0]
		start := b << bucketShift
		if now < start {
			return
		}
		list := q.buckets[b]
		if uint64(now)-uint64(start) >= 1<<bucketShift { // whole bucket is past
			for _, e := range list {
				fn(e.idx)
			}
			q.dropMin()
			continue
		}
		if !q.heaped {
			for i := len(list)/2 - 1; i >= 0; i-- {
				siftDown(list, i)
			}
			q.heaped = true
		}
		limit := uint32(now - start)
		for len(list) > 0 && list[0].off <= limit {
			fn(list[0].idx)
			last := len(list) - 1
			list[0] = list[last]
			list = list[:last]
			siftDown(list, 0)
		}
		if len(list) == 0 {
			q.dropMin()
			continue
		}
		q.buckets[b] = list
		return
	}
}

func (q *expiryQueue) pushID(b int64) {
	q.ids = append(q.ids, b)
	i := len(q.ids) - 1
	for i > 0 {
		p := (i - 1) / 2
		if q.ids[p] <= q.ids[i] {
			break
		}
		q.ids[p], q.ids[i] = q.ids[i], q.ids[p]
		i = p
	}
	if i == 0 {
		q.heaped = false // a new earliest bucket
	}
}

func (q *expiryQueue) dropMin() {
	delete(q.buckets, q.ids[0])
	last := len(q.ids) - 1
	q.ids[0] = q.ids[last]
	q.ids = q.ids[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(q.ids) && q.ids[l] < q.ids[m] {
			m = l
		}
		if r := l + 1; r < len(q.ids) && q.ids[r] < q.ids[m] {
			m = r
		}
		if m == i {
			break
		}
		q.ids[m], q.ids[i] = q.ids[i], q.ids[m]
		i = m
	}
	q.heaped = false
	if len(q.ids) == 0 {
		q.ids = nil
	}
}

func siftUp(h []qent, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].off <= h[i].off {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []qent, i int) {
	for {
		l, m := 2*i+1, i
		if l < len(h) && h[l].off < h[m].off {
			m = l
		}
		if r := l + 1; r < len(h) && h[r].off < h[m].off {
			m = r
		}
		if m == i {
			return
		}
		h[m], h[i] = h[i], h[m]
		i = m
	}
}
