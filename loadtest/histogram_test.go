package loadtest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundaries(t *testing.T) {
	top := bucket(time.Duration(1<<63 - 1))
	for i := range top {
		lo, hi := lower(i), lower(i+1)
		if hi <= lo {
			t.Fatalf("bucket %d: lower %d, next lower %d", i, lo, hi)
		}
		if got := bucket(lo); got != i {
			t.Fatalf("bucket(lower(%d)=%d) = %d", i, lo, got)
		}
		if got := bucket(hi - 1); got != i {
			t.Fatalf("bucket(lower(%d)-1=%d) = %d", i+1, hi-1, got)
		}
	}
	if bucket(-5) != 0 {
		t.Fatalf("negative durations go to bucket 0")
	}
	if b := bucket(time.Duration(1<<63 - 1)); b >= len(histogram{}.counts) {
		t.Fatalf("largest duration maps to bucket %d, past the end", b)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 100µs-5ms", func(r *rand.Rand) time.Duration {
			return 100*time.Microsecond + time.Duration(r.Int64N(int64(5*time.Millisecond)))
		}},
		{"exponential 300µs", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(300*time.Microsecond)) }},
		{"bimodal", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return 50*time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
			}
			return 200*time.Microsecond + time.Duration(r.Int64N(int64(50*time.Microsecond)))
		}},
		{"tiny", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(200)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h histogram
			var all []time.Duration
			for range 20000 {
				d := tc.gen(r)
				h.record(d)
				all = append(all, d)
			}
			slices.Sort(all)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := all[int(q*float64(len(all))+0.999999)-1]
				got := h.quantile(q)
				tol := want/32 + 1
				if d := got - want; d > tol || -d > tol {
					t.Errorf("q%v = %v, exact %v (tolerance %v)", q, got, want, tol)
				}
			}
			if h.max != all[len(all)-1] {
				t.Errorf("max %v, want %v", h.max, all[len(all)-1])
			}
		})
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Fatal("empty histogram reports non-zero latency")
	}
	for i := range 100 {
		a.record(time.Duration(i) * time.Microsecond)
		b.record(time.Duration(i+100) * time.Microsecond)
	}
	a.merge(&b)
	if a.n != 200 || a.max != 199*time.Microsecond {
		t.Fatalf("merged n=%d max=%v", a.n, a.max)
	}
	if m := a.quantile(0.5); m < 97*time.Microsecond || m > 103*time.Microsecond {
		t.Fatalf("merged median %v, want about 99.5µs", m)
	}
}
