package sentinel

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// bigLog is n decisions from 50 senders to 50 receivers, a fifth of them forged in one
// burst, every one naming the same approval: the rules' worst cases stay linear.
func bigLog(n int) *logb {
	var b logb
	ap := []any{map[string]any{"approval_id": "ap", "approver": "olga", "decision": "approve"}}
	for i := range n {
		reason := "ok"
		if i%5 == 0 {
			reason = "invalid_signature"
		}
		b.add(dec{from: fmt.Sprintf("agent-%d", i%50), to: fmt.Sprintf("agent-%d", (i+7)%50), reason: reason,
			at: time.Duration(i) * time.Millisecond, payload: map[string]any{"approvals": ap}})
	}
	return &b
}

func BenchmarkAnalyze100k(b *testing.B) {
	recs := bigLog(100_000).recs
	for b.Loop() {
		Analyze(recs)
	}
}

func BenchmarkWriteHTML100k(b *testing.B) {
	rep := Analyze(bigLog(100_000).recs)
	for b.Loop() {
		rep.WriteHTML(io.Discard)
	}
}
