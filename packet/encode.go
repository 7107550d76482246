package packet

import (
	"strconv"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

// dialect is one way of writing a packet: JSON style, datetime style, and whether
// sub-objects are written in sorted key order or in the reference model's declaration order.
type dialect struct {
	json   canonical.Style
	times  canonical.TimeStyle
	fields []field // top-level order
	sorted bool    // permissions/constraints/provenance keys sorted (else declaration order)
}

type field uint8

const (
	fPacketID field = iota
	fTaskID
	fFrom
	fTo
	fIssued
	fExpires
	fNonce
	fCapToken
	fIntent
	fTaskType
	fGoal
	fContext
	fMemoryRefs
	fPermissions
	fConstraints
	fProvenance
	fSigAlgo
	fSignature
	fPublicKey
	fRisk
	fTTL
	fAIProvenance
)

var fieldNames = [...]string{
	fPacketID: "packet_id", fTaskID: "task_id", fFrom: "from_agent", fTo: "to_agent",
	fIssued: "issued_at", fExpires: "expires_at", fNonce: "nonce", fCapToken: "capability_token",
	fIntent: "intent", fTaskType: "task_type", fGoal: "goal", fContext: "context",
	fMemoryRefs: "memory_refs", fPermissions: "permissions", fConstraints: "constraints",
	fProvenance: "provenance", fSigAlgo: "signature_algo", fSignature: "signature",
	fPublicKey: "public_key", fRisk: "risk_level", fTTL: "ttl_seconds", fAIProvenance: "ai_provenance",
}

// sortedFields is every field in code-point order of its name.
var sortedFields = []field{fAIProvenance, fCapToken, fConstraints, fContext, fExpires, fFrom,
	fGoal, fIntent, fIssued, fMemoryRefs, fNonce, fPacketID, fPermissions, fProvenance,
	fPublicKey, fRisk, fSignature, fSigAlgo, fTaskID, fTaskType, fTo, fTTL}

func without(fs []field, drop field) []field {
	out := make([]field, 0, len(fs))
	for _, f := range fs {
		if f != drop {
			out = append(out, f)
		}
	}
	return out
}

var (
	// declared is the reference model's declaration order, signature excluded (rule 0.3.3).
	declared = []field{fPacketID, fTaskID, fFrom, fTo, fIssued, fExpires, fNonce, fCapToken,
		fIntent, fTaskType, fGoal, fContext, fMemoryRefs, fPermissions, fConstraints,
		fProvenance, fSigAlgo, fPublicKey, fRisk, fTTL, fAIProvenance}

	rule04  = dialect{json: canonical.PacketV04(), times: canonical.ISOZ, fields: without(sortedFields, fSignature), sorted: true}
	rule033 = dialect{json: canonical.PacketV033(), times: canonical.ISOZ, fields: declared, sorted: false}
	wire    = dialect{json: canonical.Wire(), times: canonical.ISOOffset, fields: sortedFields, sorted: true}
)

// SigningBytes appends the bytes the sender signs under rule r to dst.
func (p *Packet) SigningBytes(dst []byte, r Rule) ([]byte, error) {
	if r == Rule033 {
		return rule033.append(dst, p)
	}
	return rule04.append(dst, p)
}

// AppendJSON appends the packet's wire JSON. A decoded packet whose fields still say what
// its wire bytes say is written as those bytes, unchanged; any other packet is written in
// the reference's spelling (sorted keys, ", " and ": " separators, ASCII escapes, "+00:00"
// datetimes).
func (p *Packet) AppendJSON(dst []byte) ([]byte, error) {
	if text, ok := p.wireText(); ok {
		return append(dst, text...), nil
	}
	return wire.append(dst, p)
}

func (d *dialect) append(dst []byte, p *Packet) ([]byte, error) {
	s := d.json
	dst = append(dst, '{')
	var err error
	for i, f := range d.fields {
		if i > 0 {
			dst = s.Comma(dst)
		}
		dst = s.Key(dst, fieldNames[f])
		switch f {
		case fPacketID:
			dst = canonical.AppendString(dst, p.PacketID, s.ASCII)
		case fTaskID:
			dst = canonical.AppendString(dst, p.TaskID, s.ASCII)
		case fFrom:
			dst = canonical.AppendString(dst, p.FromAgent, s.ASCII)
		case fTo:
			dst = canonical.AppendString(dst, p.ToAgent, s.ASCII)
		case fIssued:
			dst = d.appendTime(dst, p.IssuedAt)
		case fExpires:
			dst = d.appendTime(dst, p.ExpiresAt)
		case fNonce:
			dst = canonical.AppendString(dst, p.Nonce, s.ASCII)
		case fCapToken:
			dst = appendOptStr(dst, p.CapabilityToken, s.ASCII)
		case fIntent:
			dst = canonical.AppendString(dst, p.Intent, s.ASCII)
		case fTaskType:
			dst = appendOptStr(dst, p.TaskType, s.ASCII)
		case fGoal:
			dst = appendOptStr(dst, p.Goal, s.ASCII)
		case fContext:
			dst, err = canonical.Append(dst, &p.Context, s)
		case fMemoryRefs:
			dst = appendStrings(dst, p.MemoryRefs, s)
		case fPermissions:
			dst = append(dst, '{')
			dst = s.Key(dst, "allowed_actions")
			dst = appendStrings(dst, p.Permissions.AllowedActions, s)
			dst = s.Key(s.Comma(dst), "max_tool_calls")
			dst = appendOptInt(dst, p.Permissions.MaxToolCalls)
			dst = append(dst, '}')
		case fConstraints:
			dst = d.appendConstraints(dst, p.Constraints, p.Constraints == p.nullReview)
		case fProvenance:
			dst = d.appendProvenance(dst, p.Provenance, p.Provenance == p.nullDepth)
		case fSigAlgo:
			dst = canonical.AppendString(dst, p.SignatureAlgo, s.ASCII)
		case fSignature:
			dst = canonical.AppendString(dst, p.Signature, s.ASCII)
		case fPublicKey:
			dst = canonical.AppendString(dst, p.PublicKey, s.ASCII)
		case fRisk:
			dst = appendOptStr(dst, p.RiskLevel, s.ASCII)
		case fTTL:
			dst = appendOptInt(dst, p.TTLSeconds)
		case fAIProvenance:
			if p.AIProvenance == nil {
				dst = append(dst, "null"...)
			} else {
				dst, err = canonical.Append(dst, p.AIProvenance, s)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func (d *dialect) appendTime(dst []byte, ts canonical.Timestamp) []byte {
	dst = append(dst, '"')
	dst = canonical.AppendTimestamp(dst, ts, d.times)
	return append(dst, '"')
}

// appendConstraints writes c; reviewNull: requires_human_review was null on the wire.
func (d *dialect) appendConstraints(dst []byte, c *Constraints, reviewNull bool) []byte {
	if c == nil {
		return append(dst, "null"...)
	}
	s := d.json
	boundary := func(dst []byte) []byte {
		return appendOptStr(s.Key(dst, "data_boundary"), c.DataBoundary, s.ASCII)
	}
	runtime := func(dst []byte) []byte {
		return appendOptInt(s.Key(dst, "max_runtime_seconds"), c.MaxRuntimeSeconds)
	}
	dst = append(dst, '{')
	if d.sorted {
		dst = runtime(s.Comma(boundary(dst)))
	} else {
		dst = boundary(s.Comma(runtime(dst)))
	}
	dst = s.Key(s.Comma(dst), "requires_human_review")
	if reviewNull && !c.RequiresHumanReview {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendBool(dst, c.RequiresHumanReview)
	}
	return append(dst, '}')
}

// appendProvenance writes p; depthNull: delegation_depth was null or absent on the wire.
func (d *dialect) appendProvenance(dst []byte, p *Provenance, depthNull bool) []byte {
	if p == nil {
		return append(dst, "null"...)
	}
	s := d.json
	depth := func(dst []byte) []byte {
		dst = s.Key(dst, "delegation_depth")
		if depthNull && p.DelegationDepth == 0 {
			return append(dst, "null"...)
		}
		return strconv.AppendInt(dst, p.DelegationDepth, 10)
	}
	origin := func(dst []byte) []byte {
		return appendOptStr(s.Key(dst, "origin_workflow"), p.OriginWorkflow, s.ASCII)
	}
	dst = append(dst, '{')
	if d.sorted {
		dst = origin(s.Comma(depth(dst)))
	} else {
		dst = depth(s.Comma(origin(dst)))
	}
	return append(dst, '}')
}

func appendOptStr(dst []byte, s *string, ascii bool) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return canonical.AppendString(dst, *s, ascii)
}

func appendOptInt(dst []byte, n *int64) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, *n, 10)
}

func appendStrings(dst []byte, ss []string, s canonical.Style) []byte {
	dst = append(dst, '[')
	for i, v := range ss {
		if i > 0 {
			dst = s.Comma(dst)
		}
		dst = canonical.AppendString(dst, v, s.ASCII)
	}
	return append(dst, ']')
}

// AppendJSON appends the envelope's wire JSON: {"chain": …, "packet": …} as the reference
// writes it, with this project's "approvals" and "capabilities" beside them when present.
func (e *Envelope) AppendJSON(dst []byte) ([]byte, error) {
	s := canonical.Wire()
	dst = append(dst, '{')
	var err error
	if len(e.Approvals) > 0 {
		dst = s.Key(dst, "approvals")
		arr := canonical.Value{Kind: canonical.Array, Arr: e.Approvals}
		if dst, err = canonical.Append(dst, &arr, s); err != nil {
			return nil, err
		}
		dst = s.Comma(dst)
	}
	if len(e.Capabilities) > 0 {
		dst = appendStrings(s.Key(dst, "capabilities"), e.Capabilities, s)
		dst = s.Comma(dst)
	}
	if e.Chain != nil {
		c := e.Chain
		dst = s.Key(dst, "chain")
		dst = append(dst, '{')
		dst = appendStrings(s.Key(dst, "agents"), c.Agents, s)
		dst = s.Key(s.Comma(dst), "hops")
		hops := canonical.Value{Kind: canonical.Array, Arr: c.Hops}
		if dst, err = canonical.Append(dst, &hops, s); err != nil {
			return nil, err
		}
		dst = appendStrings(s.Key(s.Comma(dst), "packet_ids"), c.PacketIDs, s)
		dst = append(dst, '}')
		dst = s.Comma(dst)
	}
	dst = s.Key(dst, "packet")
	if dst, err = e.Packet.AppendJSON(dst); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// MarshalJSON returns the envelope's wire JSON.
func (e *Envelope) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }
