// Package audit defines audit events in the reference's JSONL shape and the sinks that
// record them.
//
// Events carry values taken from untrusted input, so sinks store them bounded (see Bound):
// no event, however hostile, produces a record that a reader of the log refuses. The file
// sink keeps a hash-chained log that any number of processes may append to at once (see
// FileSink); Verify and VerifyFile check its chain.
//
// # Merkle tree and checkpoints
//
// The records of a file log are also the leaves of one RFC 6962 Merkle tree (LeafHash:
// record seq n is leaf n-1). FileSink keeps LOG.checkpoint (CheckpointPath) beside the
// log: a C2SP tlog-checkpoint (Checkpoint: origin, size, root) signed as a note by the log
// key, refreshed after commits at most once per CheckpointInterval and at Close, so a
// reader who trusts the key detects records cut off the end, or the whole log rewritten
// with its chain recomputed, which the chain alone cannot show. SignCheckpoint,
// ParseCheckpoint and OpenCheckpoint are the format; UpdateCheckpointFile replaces the
// stored note under the log's lock (how witness cosignatures are added, see
// audit/witness).
//
// # Keys
//
// The log key is a golang.org/x/mod/sumdb/note Ed25519 signer key kept in LOG.key
// (KeyPath) or a file named with WithKeyFile, mode 0600; LoadOrCreateKey creates it on
// first use, LoadKey refuses it when others may read it. Readers need only its verifier
// key (VerifierKey, Verifier, NewVerifiers).
//
// # Proofs
//
// ReadLog and ReadLogAndCheckpoint read a log (and its checkpoint, at the same instant)
// into a Log, which computes tree hashes of any prefix (Root, Checkpoint), inclusion
// proofs (InclusionProof, and Prove for a self-contained Proof document that anyone with
// the verifier key checks offline with ParseProof and Proof.Verify) and consistency
// proofs between two sizes (ConsistencyProof, checked by VerifyConsistency).
//
// # Segments
//
// With WithRotateBytes a FileSink rotates the log by size: the active file LOG is sealed
// as LOG.000001, LOG.000002, … (SegmentPath) and a new LOG continues the chain, crash-safe
// and under the writers' lock. The chain, the Merkle tree and the one checkpoint run across
// all segments; ReadLog, ReadLogAndCheckpoint, VerifyFile and OpenFile read the segments
// and the active file as one log, and name a missing, reordered, truncated or substituted
// segment in their *BrokenError.
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
	b, err := encodeEvent(boundEvent(ev))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
