package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// A hostile packet id is stored as a prefix plus its length and sha256; a list of
// thousands of actions keeps its first elements and a marker for the rest.
func ExampleBound() {
	actions := make([]string, 1000)
	for i := range actions {
		actions[i] = fmt.Sprintf("a%d", i)
	}
	ev := audit.Bound(audit.Event{
		CorrelationID: strings.Repeat("A", 1000),
		Payload:       map[string]any{"actions": actions},
	})
	fmt.Println(len(ev.CorrelationID) <= audit.MaxStringBytes, ev.CorrelationID[120:152])
	kept := ev.Payload["actions"].([]any)
	fmt.Println(len(kept), kept[0], kept[len(kept)-1].(string)[:25])
	// Output:
	// true AAAAAAAA...[truncated 1000 bytes
	// 64 a0 ...[1000 items in all sha
}

// Any number of processes may append to one log; each record chains to the one before.
func ExampleOpenFile() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	log, err := audit.OpenFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, typ := range []string{audit.PacketAccepted, audit.PacketRejected} {
		ev := audit.Event{EventID: "ev-" + typ, EventType: typ, Timestamp: time.Unix(0, 0).UTC()}
		if err := log.Emit(context.Background(), ev); err != nil {
			fmt.Println(err) // wraps audit.ErrUnavailable: the event is not on the record
			return
		}
	}
	log.Close()
	n, _, err := audit.VerifyFile(path)
	fmt.Println(n, err)
	// Output: 2 <nil>
}

// The stdout sink writes the reference's JSONL shape, one bounded event per line.
func ExampleNewWriterSink() {
	sink := audit.NewWriterSink(os.Stdout)
	ev := audit.Event{EventID: "ev-1", EventType: audit.PacketAccepted, Timestamp: time.Unix(0, 0).UTC(), Payload: map[string]any{"packet_id": "p-1"}}
	if err := sink.Emit(context.Background(), ev); err != nil {
		fmt.Println(err) // wraps audit.ErrUnavailable, now and for every later event
	}
	// Output: {"event_id":"ev-1","event_type":"packet_accepted","timestamp":"1970-01-01T00:00:00Z","producer_id":"","correlation_id":"","idempotency_key":"","payload":{"packet_id":"p-1"}}
}
