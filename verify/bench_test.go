package verify

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/replay"
	pebblestore "github.com/trusthandoff/trusthandoff-go/store/pebble"
)

// benchPool holds pre-signed typical envelopes with distinct nonces, shared by the
// benchmarks (signing is not what they measure). It only grows.
var benchPool struct {
	sync.Mutex
	f    *fixture
	envs [][]byte
}

func envelopes(b *testing.B, n int) (*fixture, [][]byte) {
	benchPool.Lock()
	defer benchPool.Unlock()
	if benchPool.f == nil {
		benchPool.f = newFixture(b)
	}
	f := benchPool.f
	for len(benchPool.envs) < n {
		p := draft(f.alice, f.bob)
		p.Permissions.AllowedActions = []string{"read_tickets", "search_kb", "draft_reply"}
		benchPool.envs = append(benchPool.envs, seal(b, p, f.alice.s, nil))
	}
	return f, benchPool.envs[:n]
}

// BenchmarkBareVerify is the floor: one ed25519.Verify of a typical packet's signed bytes.
func BenchmarkBareVerify(b *testing.B) {
	f, envs := envelopes(b, 1)
	env, err := packet.ParseEnvelope(envs[0], packet.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := env.Packet.SigningBytes(nil, packet.Rule04)
	sig, _ := packet.SignatureBytes(env.Packet.Signature)
	pub := ed25519.PublicKey(f.alice.s.Public())
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkPipelineMemory is the whole pipeline (parse, registry, signature, time, policy,
// replay with the memory store) on accepted typical envelopes, one caller.
func BenchmarkPipelineMemory(b *testing.B) {
	const poolSize = 4096
	f, envs := envelopes(b, poolSize)
	ctx := context.Background()
	now := t0.Add(time.Second)
	var v *Verifier
	fresh := func() {
		var err error
		v, err = New(f.reg, replay.NewMemory(replay.MemoryConfig{Now: func() time.Time { return now }}), WithRevocations(f.revoked))
		if err != nil {
			b.Fatal(err)
		}
	}
	fresh()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == poolSize { // every nonce used: start over with an empty store
			b.StopTimer()
			fresh()
			i = 0
			b.StartTimer()
		}
		if d := v.VerifyAt(ctx, envs[i], now); !d.Accepted() {
			b.Fatalf("%s: %s", d.Reason, d.Detail)
		}
		i++
	}
}

// BenchmarkPipelinePebble measures accepted handoffs/s through the whole pipeline with the
// durable store (every nonce fsynced before ACCEPT, group commit), with 1 and 64 callers.
func BenchmarkPipelinePebble(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			f, envs := envelopes(b, b.N)
			st, err := pebblestore.Open(b.TempDir(), pebblestore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			v, err := New(f.reg, st, WithRevocations(st))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			now := t0.Add(time.Second)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(len(envs)) {
							return
						}
						if d := v.VerifyAt(ctx, envs[i], now); !d.Accepted() {
							b.Errorf("%s: %s", d.Reason, d.Detail)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepted/s")
		})
	}
}

// precomputedFixture is the benchmark fixture with its registry's keys precomputed
// (fastverify), as the CLI loads registries.
func precomputedFixture(b *testing.B) *fixture {
	f, _ := envelopes(b, 1)
	if err := f.reg.SetVerifierFactory(fastverify.New); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkPipelineMemoryPrecomputed is BenchmarkPipelineMemory with the registry's keys
// precomputed.
func BenchmarkPipelineMemoryPrecomputed(b *testing.B) {
	precomputedFixture(b)
	defer benchPool.f.reg.SetVerifierFactory(nil)
	BenchmarkPipelineMemory(b)
}

// BenchmarkPipelineChain5 is the whole pipeline (precomputed registry) on packets that
// carry a depth-5 capability chain (mallory → olga → oscar → carol → alice → bob) ending in a
// grant from the sender alice to the receiver bob: six signatures per packet.
func BenchmarkPipelineChain5(b *testing.B) {
	f := precomputedFixture(b)
	defer f.reg.SetVerifierFactory(nil)
	const poolSize = 512
	envs := make([][]byte, poolSize)
	if _, err := f.reg.Add("", f.mallory.s.Public(), nil, nil); err != nil { // six distinct agents
		b.Fatal(err)
	}
	hops := []agent{f.mallory, f.olga, f.oscar, f.carol, f.alice, f.bob} // root issuer ... leaf subject
	actions := []string{"read_tickets"}
	c := f.grant(b, hops[0], hops[1], actions, time.Hour)
	tokens := []string{c.Token()}
	for h := 1; h+1 < len(hops); h++ {
		c = derive(b, c, hops[h], hops[h+1], actions)
		tokens = append(tokens, c.Token())
	}
	for i := range envs {
		p := draft(f.alice, f.bob)
		leaf := c.Token()
		p.CapabilityToken = &leaf
		envs[i] = seal(b, p, f.alice.s, tokens)
	}
	ctx := context.Background()
	now := t0.Add(time.Second)
	var v *Verifier
	fresh := func() {
		var err error
		v, err = New(f.reg, replay.NewMemory(replay.MemoryConfig{Now: func() time.Time { return now }}), WithRevocations(f.revoked), WithRequireCapability(), WithMaxDepth(5))
		if err != nil {
			b.Fatal(err)
		}
	}
	fresh()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == poolSize {
			b.StopTimer()
			fresh()
			i = 0
			b.StartTimer()
		}
		if d := v.VerifyAt(ctx, envs[i], now); !d.Accepted() {
			b.Fatalf("%s: %s", d.Reason, d.Detail)
		}
		i++
	}
}
