// Package packet implements the SignedTaskPacket and the DelegationEnvelope that carries it:
// strict decoding, the two reference signing rules (0.4 and 0.3.3), signing, signature
// verification and the pure validation functions (time window, TTL policy, AI provenance).
//
// Canonical bytes are byte-exact with the Python reference (DESIGN §3): rule 0.4 is
// json.dumps(model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True);
// rule 0.3.3 is pydantic's model_dump_json (declaration order, raw UTF-8, pydantic floats).
package packet

import (
	"github.com/trusthandoff/trusthandoff-go/canonical"
)

// Permissions are the actions a packet asks its receiver to perform.
type Permissions struct {
	AllowedActions []string
	MaxToolCalls   *int64 // nil: no limit
}

// Constraints bound how the receiver may execute.
type Constraints struct {
	MaxRuntimeSeconds   *int64
	DataBoundary        *string
	RequiresHumanReview bool
}

// Provenance records where a delegation comes from.
type Provenance struct {
	OriginWorkflow  *string
	DelegationDepth int64
}

// Packet is a SignedTaskPacket with the reference's fields.
type Packet struct {
	PacketID        string
	TaskID          string
	FromAgent       string
	ToAgent         string
	IssuedAt        canonical.Timestamp
	ExpiresAt       canonical.Timestamp
	Nonce           string
	CapabilityToken *string
	Intent          string
	TaskType        *string
	Goal            *string
	Context         canonical.Value // always an Object
	MemoryRefs      []string
	Permissions     Permissions
	Constraints     *Constraints
	Provenance      *Provenance
	SignatureAlgo   string
	Signature       string // standard base64 of the 64-byte Ed25519 signature
	PublicKey       string // SPKI PEM of the sender's key
	RiskLevel       *string
	TTLSeconds      *int64
	AIProvenance    *canonical.Value // nil or an Object (semantically it must carry "source")
}

// Chain is the envelope's unsigned delegation chain. It is informational only: security
// decisions use signed data (provenance.delegation_depth, the capability chain).
type Chain struct {
	PacketIDs []string
	Agents    []string
	Hops      []canonical.Value // objects, kept as received
}

// Envelope is a DelegationEnvelope: the packet, the reference's unsigned chain, and this
// project's extensions that travel beside the packet (never inside the signed bytes).
type Envelope struct {
	Packet       *Packet
	Chain        *Chain   // nil when absent
	Capabilities []string // capability tokens, root first, leaf last
	Approvals    []canonical.Value
}

// Rule names a packet signing rule.
type Rule string

// The two signing rules of the reference.
const (
	Rule04  Rule = "0.4"
	Rule033 Rule = "0.3.3"
)

// Risk levels of the default policy.
const (
	RiskRead  = "read"
	RiskWrite = "write"
)
