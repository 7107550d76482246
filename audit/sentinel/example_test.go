package sentinel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/sentinel"
)

// A log with a handoff accepted, then replayed: read and verify the log, analyse it, and
// print the findings with the records they cite.
func Example() {
	dir, _ := os.MkdirTemp("", "sentinel-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	sink, err := audit.OpenFile(path)
	if err != nil {
		log.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, d := range []struct{ typ, decision, reason string }{
		{audit.PacketAccepted, "ACCEPT", "ok"},
		{audit.PacketRejected, "REJECT", "replay_detected"},
		{audit.ReplayDetected, "REJECT", "replay_detected"},
	} {
		sink.Emit(context.Background(), audit.Event{
			EventID: fmt.Sprintf("ev-%d", i+1), EventType: d.typ, Timestamp: at, CorrelationID: "pkt-1",
			Payload: map[string]any{"packet_id": "pkt-1", "decision": d.decision, "reason": d.reason,
				"from_agent": "agent:planner", "to_agent": "agent:researcher"},
		})
	}
	sink.Close()

	l, err := audit.ReadLog(path) // verifies the chain; check the checkpoint too (audit verify)
	if err != nil {
		log.Fatal(err)
	}
	rep := sentinel.AnalyzeLog(l, sentinel.LogInfo{Records: l.Size(), Verified: true})
	for _, f := range rep.Findings {
		fmt.Printf("%s %s: %s (records %v)\n", f.Severity, f.Rule, f.Summary, f.Seqs)
	}
	e := rep.Graph.Edges[0]
	fmt.Printf("%s -> %s: %d accepted, %d rejected\n", e.From, e.To, e.Accepted, e.Rejected)
	// Output:
	// high replay_detected: agent "agent:planner": 1 handoff replayed (packets "pkt-1") (records [2 3])
	// agent:planner -> agent:researcher: 1 accepted, 1 rejected
}
