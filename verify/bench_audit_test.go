package verify

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/replay"
)

// BenchmarkPipelineAudit measures the cost of the audit log: the whole pipeline (memory
// replay store, precomputed registry keys) at 64 (and 256) concurrent callers, without a
// sink and with an audit.FileSink (one hash-chained record per decision, synced before the
// decision is returned, group-committed; signed checkpoints refreshed as in production).
// Compare the sub-benchmarks of one run.
func BenchmarkPipelineAudit(b *testing.B) {
	precomputedFixture(b)
	defer benchPool.f.reg.SetVerifierFactory(nil)
	for _, bc := range []struct {
		sink    string
		callers int
	}{{"none", 64}, {"file", 64}, {"none", 256}, {"file", 256}} {
		sink := bc.sink
		b.Run(fmt.Sprintf("sink=%s/callers=%d", sink, bc.callers), func(b *testing.B) {
			f, envs := envelopes(b, b.N)
			now := t0.Add(time.Second)
			opts := []Option{WithRevocations(f.revoked)}
			if sink == "file" {
				s, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					if err := s.Close(); err != nil {
						b.Error(err)
					}
				}()
				opts = append(opts, WithAudit(s, "bench"))
			}
			v, err := New(f.reg, replay.NewMemory(replay.MemoryConfig{Now: func() time.Time { return now }}), opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(max(1, bc.callers/runtime.GOMAXPROCS(0))) // callers goroutines
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					if d := v.VerifyAt(ctx, envs[i], now); !d.Accepted() {
						b.Errorf("%s: %s", d.Reason, d.Detail)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepted/s")
		})
	}
}
