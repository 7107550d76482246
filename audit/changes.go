package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Changes of state made outside a verification (a revocation, an approval submitted, a
// registry change) are recorded with the events built here. Each names who asked (by: an
// agent id, "admin" for a holder of the sidecar's admin token, or "operator" for the
// command line) and has an idempotency key that is the same for the same change, so a
// change retried after a failure to record it is recognisable.

// RevocationEvent is the Revocation event of kind ("agent" or "capability") id revoked
// at at. Its correlation id is the revoked id.
func RevocationEvent(producer, kind, id string, at time.Time, by string) Event {
	return Event{
		EventID: newEventID(), EventType: Revocation, Timestamp: at.UTC(), ProducerID: producer,
		CorrelationID: id, IdempotencyKey: Revocation + ":" + kind + ":" + id,
		Payload: map[string]any{"kind": kind, "id": id, "revoked_at": at.UTC().Format(time.RFC3339Nano), "by": by},
	}
}

// Approval is what an ApprovalRecorded event says of an approval.
type Approval struct {
	ApprovalID   string
	PacketDigest string // lowercase hex
	Approver     string
	Decision     string // approve or deny
	ExpiresAt    time.Time
}

// ApprovalRecordedEvent is the ApprovalRecorded event of a, submitted at at; held tells
// whether a handoff waiting for approvals held it. Its correlation id is the packet digest
// (the packet's id is not in the approval).
func ApprovalRecordedEvent(producer string, a Approval, held bool, at time.Time, by string) Event {
	return Event{
		EventID: newEventID(), EventType: ApprovalRecorded, Timestamp: at.UTC(), ProducerID: producer,
		CorrelationID: a.PacketDigest, IdempotencyKey: ApprovalRecorded + ":" + a.ApprovalID,
		Payload: map[string]any{
			"approval_id": a.ApprovalID, "packet_digest": a.PacketDigest, "approver": a.Approver,
			"decision": a.Decision, "expires_at": a.ExpiresAt.UTC().Format(time.RFC3339Nano),
			"held": held, "by": by,
		},
	}
}

// Registry operations named by RegistryChangeEvent.
const (
	RegistryAdd    = "add"
	RegistryRotate = "rotate"
	RegistryRevoke = "revoke"
)

// RegistryChangeEvent is the RegistryChange event of op (RegistryAdd, RegistryRotate,
// RegistryRevoke) on agentID at at. pub is the public key added or rotated in (nil for a
// revocation), named in the payload by key_sha256, the lowercase hex SHA-256 of its raw
// bytes; roles are the agent's roles after the change. Its correlation id is the agent id.
func RegistryChangeEvent(producer, op, agentID string, pub ed25519.PublicKey, roles []string, at time.Time, by string) Event {
	p := map[string]any{"op": op, "agent_id": agentID, "at": at.UTC().Format(time.RFC3339Nano), "by": by}
	keySHA256 := ""
	if len(pub) > 0 {
		sum := sha256.Sum256(pub)
		keySHA256 = hex.EncodeToString(sum[:])
		p["key_sha256"] = keySHA256
	}
	if len(roles) > 0 {
		p["roles"] = slices.Clone(roles)
	}
	return Event{
		EventID: newEventID(), EventType: RegistryChange, Timestamp: at.UTC(), ProducerID: producer,
		CorrelationID: agentID, IdempotencyKey: RegistryChange + ":" + op + ":" + agentID + ":" + keySHA256,
		Payload: p,
	}
}

// newEventID returns 32 random lowercase hex digits, the form of the verifier's event ids.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
