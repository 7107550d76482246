// Package packet implements the SignedTaskPacket and the DelegationEnvelope that carries it:
// strict decoding, the two reference signing rules (0.4 and 0.3.3), signing, signature
// verification and the pure validation functions (time window, TTL policy, AI provenance).
//
// Canonical bytes are byte-exact with the Python reference: rule 0.4 is
// json.dumps(model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True);
// rule 0.3.3 is pydantic's model_dump_json (declaration order, raw UTF-8, pydantic floats).
package packet

import (
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"slices"
)

// Permissions are the actions a packet asks its receiver to perform. Absent on the wire,
// allowed_actions is [] and max_tool_calls null: the reference model's defaults, which are
// what its signer signs.
type Permissions struct {
	AllowedActions []string
	MaxToolCalls   *int64 // nil: no limit
}

// Allows reports whether every one of actions is among p.AllowedActions, and else names
// the first that is not.
func (p Permissions) Allows(actions []string) (missing string, ok bool) {
	set := p.AllowedActions
	if len(actions)*len(set) <= 64 {
		for _, a := range actions {
			if !slices.Contains(set, a) {
				return a, false
			}
		}
		return "", true
	}
	m := make(map[string]struct{}, len(set))
	for _, b := range set {
		m[b] = struct{}{}
	}
	for _, a := range actions {
		if _, ok := m[a]; !ok {
			return a, false
		}
	}
	return "", true
}

// Constraints bound how the receiver may execute. Absent on the wire, max_runtime_seconds
// and data_boundary are null and requires_human_review is false (the model's defaults); a
// requires_human_review of null means false too (see [Packet]).
type Constraints struct {
	MaxRuntimeSeconds   *int64
	DataBoundary        *string
	RequiresHumanReview bool
}

// Clone returns a deep copy of c (nil for nil).
func (c *Constraints) Clone() *Constraints {
	if c == nil {
		return nil
	}
	out := &Constraints{RequiresHumanReview: c.RequiresHumanReview}
	if c.MaxRuntimeSeconds != nil {
		n := *c.MaxRuntimeSeconds
		out.MaxRuntimeSeconds = &n
	}
	if c.DataBoundary != nil {
		b := *c.DataBoundary
		out.DataBoundary = &b
	}
	return out
}

// Provenance records where a delegation comes from. Absent on the wire, origin_workflow and
// delegation_depth are null (the model's defaults); a null delegation_depth counts as 0
// (see [Packet]).
type Provenance struct {
	OriginWorkflow  *string
	DelegationDepth int64
}

// Packet is a SignedTaskPacket with the reference's fields.
//
// A decoded packet remembers what the Go fields cannot hold, so that it is signed and
// written again exactly as received:
//   - a provenance.delegation_depth or constraints.requires_human_review that was null (or,
//     for the depth, absent): it is read as 0 or false and signed as null again, as long as
//     that Provenance or Constraints still holds 0 or false;
//   - its wire bytes: [Packet.AppendJSON] (and so [Envelope.AppendJSON]) writes them
//     unchanged, as long as the packet's fields still say what they say. A signed packet
//     is never re-encoded, so a 0.3.3 packet keeps its nested key order and spellings.
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

	nullDepth  *Provenance  // its delegation_depth was null or absent on the wire
	nullReview *Constraints // its requires_human_review was null on the wire
	// wire is the text the packet was decoded from: the packet's own JSON, or (wireIn) an
	// envelope holding it under "packet". It aliases the caller's input and is only read
	// when the packet is written again, after wireText re-validates it; nil for built packets.
	wire   []byte
	wireIn bool
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
