package capability

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"
)

// benchChain builds a chain of depth links a0 → a1 → … → a<depth>, each narrower than
// the last, and a registry holding every agent.
func benchChain(tb testing.TB, depth int) ([]string, []*Capability, *StaticRegistry) {
	tb.Helper()
	agents := make([]testAgent, depth+1)
	for i := range agents {
		agents[i] = agent(fmt.Sprintf("bench-%d", i))
	}
	reg := registryOf(tb, agents...)
	eu := "eu"
	c, err := Issue(agents[0].signer, agents[1].id, perms(i64(100), "read", "search", "summarize", "draft_reply"),
		&Constraints{MaxRuntimeSeconds: i64(600), DataBoundary: &eu}, t0, t0.Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	chain := []*Capability{c}
	for i := 1; i < depth; i++ {
		c, err = Derive(c, agents[i].signer, agents[i+1].id, perms(i64(int64(100-i)), "read", "search"), nil,
			t0.Add(time.Duration(i)*time.Second), t0.Add(time.Hour-time.Duration(i)*time.Minute))
		if err != nil {
			tb.Fatal(err)
		}
		chain = append(chain, c)
	}
	tokens := make([]string, len(chain))
	for i, c := range chain {
		tokens[i] = c.Token()
	}
	decoded, err := DecodeChain(tokens, Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := VerifyChain(decoded, reg, now); err != nil {
		tb.Fatal(err)
	}
	return tokens, decoded, reg
}

// BenchmarkBareVerify is the floor: one ed25519.Verify of a capability's signing bytes.
// Compare BenchmarkVerifyChain/depth=d against d × this.
func BenchmarkBareVerify(b *testing.B) {
	_, chain, _ := benchChain(b, 1)
	c := chain[0]
	msg := c.SigningBytes()
	pub, sig, err := c.keys()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig[:]) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkVerifyChain(b *testing.B) {
	for _, depth := range []int{1, 3, 5} {
		tokens, chain, reg := benchChain(b, depth)
		// Decode excluded: the chain was decoded once, ahead of time.
		b.Run(fmt.Sprintf("depth=%d/decoded", depth), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifyChain(chain, reg, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Decode included: from the tokens as they arrive in an envelope.
		b.Run(fmt.Sprintf("depth=%d/tokens", depth), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				chain, err := DecodeChain(tokens, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if err := VerifyChain(chain, reg, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeToken(b *testing.B) {
	tokens, _, _ := benchChain(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeToken(tokens[0], Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSigningBytes(b *testing.B) {
	_, chain, _ := benchChain(b, 1)
	var buf [1024]byte
	b.ReportAllocs()
	for b.Loop() {
		chain[0].appendJSON(buf[:0], true)
	}
}
