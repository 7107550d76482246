package loadtest

import (
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets: 2^subBits buckets per power of two,
// so a quantile read from it is within 1/2^subBits (1.6 %) of the recorded value, and its
// size is fixed (about 60 KiB) however many requests a run makes.
type histogram struct {
	counts [(63-subBits)<<subBits + 1<<subBits]uint64 // bucket(MaxInt64) is the last
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const subBits = 6

// bucket maps a duration in nanoseconds to its bucket index.
func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<subBits {
		return int(v) // exact below 64 ns
	}
	exp := bits.Len64(v) - 1 - subBits // v >> exp has subBits+1 bits
	return (exp+1)<<subBits + int(v>>exp) - 1<<subBits
}

// lower returns the smallest duration in bucket i.
func lower(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	exp := i>>subBits - 1
	mant := uint64(i&(1<<subBits-1)) + 1<<subBits
	return time.Duration(mant << exp)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucket(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q ≤ 1): the midpoint of the bucket holding the
// ceil(q·n)-th smallest value, capped at the largest value recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == len(h.counts)-1 {
				return h.max
			}
			lo, hi := lower(i), lower(i+1)
			return min(lo+(hi-lo)/2, h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
