// Package audit defines audit events in the reference's JSONL shape and the sinks that
// record them.
//
// Events carry values taken from untrusted input, so sinks store them bounded (see Bound):
// no event, however hostile, produces a record that a reader of the log refuses. The file
// sink keeps a hash-chained log that any number of processes may append to at once (see
// FileSink); Verify and VerifyFile check it.
//
// Each record is also a leaf of an RFC 6962 Merkle tree (LeafHash): the sink keeps a
// signed checkpoint of the whole log in LOG.checkpoint (a C2SP tlog-checkpoint, as a
// signed note) beside it, signed with the log key in LOG.key (an Ed25519 note key, created
// 0600 on first use; WithKeyFile names another). ReadLog and ReadLogAndCheckpoint read a
// log into a Log, which gives tree hashes and inclusion (Prove) and consistency proofs
// that anyone holding the log's verifier key checks offline; a truncated tail, invisible
// to the chain, is caught against the checkpoint.
//
// With WithRotateBytes the log is split by size into sealed segments LOG.000001,
// LOG.000002, … (SegmentPath) and the active file LOG; the chain, the tree and the one
// checkpoint run across all of them, and every reader here reads them as one log, naming
// a missing, reordered, truncated or substituted segment.
package audit

import (
	"context"
	"time"
)

// Event types. The first five are the reference's; the rest are this project's.
const (
	PacketAccepted     = "packet_accepted"
	PacketRejected     = "packet_rejected"
	CapabilityStale    = "capability_stale"
	TokenOverlapUsed   = "token_overlap_used"
	AIGeneratedPayload = "ai_generated_payload"
	ReplayDetected     = "replay_detected"
	ApprovalRecorded   = "approval_recorded"
	Revocation         = "revocation"
	WrongRecipient     = "wrong_recipient"  // a packet delivered to a verifier it is not addressed to
	ApprovalDenied     = "approval_denied"  // a signed deny recorded: the packet is vetoed
	ReceiptAccepted    = "receipt_accepted" // an execution receipt verified
	ReceiptRejected    = "receipt_rejected" // an execution receipt refused
	RegistryChange     = "registry_change"  // an agent added, rotated or revoked
)

// Event is one audit record. The first six fields are the reference's; Payload carries the
// event-specific data.
type Event struct {
	EventID        string         `json:"event_id"`
	EventType      string         `json:"event_type"`
	Timestamp      time.Time      `json:"timestamp"`
	ProducerID     string         `json:"producer_id"`
	CorrelationID  string         `json:"correlation_id"`
	IdempotencyKey string         `json:"idempotency_key"`
	Payload        map[string]any `json:"payload"`
}

// Sink records events. Emit must not retain ev after returning.
type Sink interface {
	Emit(ctx context.Context, ev Event) error
}

// Discard returns a Sink that drops every event.
func Discard() Sink { return discard{} }

type discard struct{}

func (discard) Emit(context.Context, Event) error { return nil }

// MarshalLine returns ev, bounded (see Bound), as one JSON line, as the file log writes it
// (without its seq and prev_hash).
func MarshalLine(ev Event) ([]byte, error) {
	b, err := encodeJSON(Bound(ev))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
