package verify

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/replay"
)

// BenchmarkPipelineAudit is the whole pipeline (memory replay store, precomputed registry)
// with 64 concurrent callers, without an audit sink and with a FileSink (every decision
// appended and fsynced before it returns, group-committed), in one run so the two compare.
func BenchmarkPipelineAudit(b *testing.B) {
	for _, sink := range []string{"none", "file"} {
		b.Run("sink="+sink+"/callers=64", func(b *testing.B) {
			f := precomputedFixture(b)
			defer f.reg.SetVerifierFactory(nil)
			_, envs := envelopes(b, b.N)
			now := t0.Add(time.Second)
			opts := []Option{WithRevocations(f.revoked)}
			if sink == "file" {
				s, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				opts = append(opts, WithAudit(s, "bench"))
			}
			v, err := New(f.reg, replay.NewMemory(replay.MemoryConfig{Now: func() time.Time { return now }}), opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			var i atomic.Int64
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if d := v.VerifyAt(ctx, envs[i.Add(1)-1], now); !d.Accepted() {
						b.Errorf("%s: %s", d.Reason, d.Detail)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepted/s")
		})
	}
}
