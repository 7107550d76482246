package packet

import (
	"encoding/base64"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Limits bound decoding. The zero value means the defaults: 1 MiB, depth 64.
type Limits = canonical.Limits

func malformed(format string, args ...any) error {
	return reason.New(reason.MalformedEnvelope, fmt.Sprintf(format, args...))
}

// malformedField gives a failed typed field read (a *canonical.FieldError, which names the
// field) the code malformed_envelope. Errors that already carry a code pass through, so
// every decoding loop can return what it got through this one function.
func malformedField(err error) error {
	if fe, ok := err.(*canonical.FieldError); ok {
		return reason.Wrap(reason.MalformedEnvelope, "invalid field", fe)
	}
	return err
}

// ParseEnvelope strictly decodes a DelegationEnvelope. Every failure is a *reason.Error with
// code malformed_envelope. The packet keeps its bytes from data (see [Packet]), so writing
// the envelope again re-emits the packet byte for byte.
func ParseEnvelope(data []byte, lim Limits) (*Envelope, error) {
	v, err := canonical.Parse(data, lim)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "envelope is not valid JSON", err)
	}
	env, err := EnvelopeFromValue(&v)
	if err != nil {
		return nil, err
	}
	env.Packet.wire, env.Packet.wireIn = data, true
	return env, nil
}

// EnvelopeFromValue decodes an already parsed envelope. Without the envelope's bytes, its
// packet is re-encoded when written (prefer [ParseEnvelope] for envelopes to pass on).
func EnvelopeFromValue(v *canonical.Value) (*Envelope, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("envelope must be a JSON object, not %s", v.Kind)
	}
	env := &Envelope{}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "packet":
			env.Packet, err = FromValue(&m.Value)
		case "chain":
			env.Chain, err = decodeChain(&m.Value)
		case "capabilities":
			env.Capabilities, err = m.Value.AsStrings(m.Key)
		case "approvals":
			if m.Value.Kind != canonical.Array {
				return nil, malformed("approvals must be an array")
			}
			env.Approvals = m.Value.Arr
		default:
			return nil, malformed("unknown envelope field %q", m.Key)
		}
		if err != nil {
			return nil, malformedField(err)
		}
	}
	if env.Packet == nil {
		return nil, malformed("envelope has no packet")
	}
	return env, nil
}

// ParsePacket strictly decodes a bare SignedTaskPacket. The packet keeps its bytes from
// data (see [Packet]).
func ParsePacket(data []byte, lim Limits) (*Packet, error) {
	v, err := canonical.Parse(data, lim)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "packet is not valid JSON", err)
	}
	p, err := FromValue(&v)
	if err != nil {
		return nil, err
	}
	p.wire = data
	return p, nil
}

func decodeChain(v *canonical.Value) (*Chain, error) {
	if obj, err := v.AsOptObject("chain"); obj == nil { // null, or not an object
		return nil, malformedField(err)
	}
	c := &Chain{PacketIDs: []string{}, Agents: []string{}, Hops: []canonical.Value{}}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "packet_ids":
			c.PacketIDs, err = m.Value.AsStrings("chain.packet_ids")
		case "agents":
			c.Agents, err = m.Value.AsStrings("chain.agents")
		case "hops":
			if m.Value.Kind != canonical.Array {
				return nil, malformed("chain.hops must be an array")
			}
			for _, h := range m.Value.Arr {
				if h.Kind != canonical.Object {
					return nil, malformed("chain.hops entries must be objects")
				}
			}
			c.Hops = m.Value.Arr
		default:
			return nil, malformed("unknown chain field %q", m.Key)
		}
		if err != nil {
			return nil, malformedField(err)
		}
	}
	return c, nil
}

// field presence bits for required fields.
const (
	hasPacketID = 1 << iota
	hasTaskID
	hasFrom
	hasTo
	hasIssued
	hasExpires
	hasNonce
	hasIntent
	hasPermissions
	hasSigAlgo
	hasSignature
	hasPublicKey
	required = 1<<iota - 1
)

var requiredNames = []string{"packet_id", "task_id", "from_agent", "to_agent", "issued_at", "expires_at", "nonce", "intent", "permissions", "signature_algo", "signature", "public_key"}

// FromValue decodes a packet object. Absent optional fields take the reference model's
// defaults (null, [], {}, false), exactly as pydantic fills them in before signing or
// verifying; the fields the model requires (signature_algo among them) are required.
func FromValue(v *canonical.Value) (*Packet, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("packet must be a JSON object, not %s", v.Kind)
	}
	p := &Packet{
		Context:    canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{}},
		MemoryRefs: []string{},
	}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		val := &m.Value
		var err error
		switch m.Key {
		case "packet_id":
			p.PacketID, err = val.AsString(m.Key)
			seen |= hasPacketID
		case "task_id":
			p.TaskID, err = val.AsString(m.Key)
			seen |= hasTaskID
		case "from_agent":
			p.FromAgent, err = val.AsString(m.Key)
			seen |= hasFrom
		case "to_agent":
			p.ToAgent, err = val.AsString(m.Key)
			seen |= hasTo
		case "issued_at":
			p.IssuedAt, err = val.AsTimestamp(m.Key)
			seen |= hasIssued
		case "expires_at":
			p.ExpiresAt, err = val.AsTimestamp(m.Key)
			seen |= hasExpires
		case "nonce":
			p.Nonce, err = val.AsString(m.Key)
			seen |= hasNonce
		case "capability_token":
			p.CapabilityToken, err = val.AsOptString(m.Key)
		case "intent":
			p.Intent, err = val.AsString(m.Key)
			seen |= hasIntent
		case "task_type":
			p.TaskType, err = val.AsOptString(m.Key)
		case "goal":
			p.Goal, err = val.AsOptString(m.Key)
		case "context":
			var obj *canonical.Value
			if obj, err = val.AsObject(m.Key); err == nil {
				p.Context = *obj
			}
		case "memory_refs":
			p.MemoryRefs, err = val.AsStrings(m.Key)
		case "permissions":
			p.Permissions, err = decodePermissions(val)
			seen |= hasPermissions
		case "constraints":
			var reviewNull bool
			if p.Constraints, reviewNull, err = decodeConstraints(val); reviewNull {
				p.nullReview = p.Constraints
			}
		case "provenance":
			var depthNull bool
			if p.Provenance, depthNull, err = decodeProvenance(val); depthNull {
				p.nullDepth = p.Provenance
			}
		case "signature_algo":
			p.SignatureAlgo, err = val.AsString(m.Key)
			seen |= hasSigAlgo
		case "signature":
			p.Signature, err = val.AsString(m.Key)
			seen |= hasSignature
		case "public_key":
			// Parsed here, not only where it is bound, so that a small-order, non-canonical
			// or otherwise invalid key is malformed_envelope whatever the registry says.
			if p.PublicKey, err = val.AsString(m.Key); err == nil {
				if _, kerr := identity.ParsePublicKeyPEM(p.PublicKey); kerr != nil {
					err = reason.Wrap(reason.MalformedEnvelope, "public_key", kerr)
				}
			}
			seen |= hasPublicKey
		case "risk_level":
			p.RiskLevel, err = val.AsOptString(m.Key)
		case "ttl_seconds":
			p.TTLSeconds, err = val.AsOptInt64(m.Key)
		case "ai_provenance":
			p.AIProvenance, err = val.AsOptObject(m.Key)
		default:
			return nil, malformed("unknown packet field %q (unsigned extra fields are rejected)", m.Key)
		}
		if err != nil {
			return nil, malformedField(err)
		}
	}
	if seen != required {
		for i, name := range requiredNames {
			if seen&(1<<i) == 0 {
				return nil, malformed("packet has no %s", name)
			}
		}
	}
	if _, err := SignatureBytes(p.Signature); err != nil {
		return nil, err
	}
	return p, nil
}

// SignatureBytes decodes a packet signature: canonical standard base64 of exactly 64 bytes.
func SignatureBytes(sig string) ([]byte, error) {
	if len(sig) != 88 {
		return nil, malformed("signature must be the standard base64 of 64 bytes (88 characters), got %d characters", len(sig))
	}
	var buf [66]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(sig))
	if err != nil || n != 64 {
		return nil, malformed("signature is not canonical standard base64 of 64 bytes")
	}
	return buf[:64:64], nil
}

func decodePermissions(v *canonical.Value) (Permissions, error) {
	p := Permissions{AllowedActions: []string{}} // the model's defaults: [] and null
	if _, err := v.AsObject("permissions"); err != nil {
		return p, malformedField(err)
	}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "allowed_actions":
			p.AllowedActions, err = m.Value.AsStrings("permissions.allowed_actions")
		case "max_tool_calls":
			p.MaxToolCalls, err = m.Value.AsOptInt64("permissions.max_tool_calls")
		default:
			return p, malformed("unknown permissions field %q", m.Key)
		}
		if err != nil {
			return p, malformedField(err)
		}
	}
	return p, nil
}

// decodeConstraints also reports whether requires_human_review is null.
func decodeConstraints(v *canonical.Value) (c *Constraints, reviewNull bool, err error) {
	if obj, err := v.AsOptObject("constraints"); obj == nil { // null, or not an object
		return nil, false, malformedField(err)
	}
	c = &Constraints{}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "max_runtime_seconds":
			c.MaxRuntimeSeconds, err = m.Value.AsOptInt64("constraints.max_runtime_seconds")
		case "data_boundary":
			c.DataBoundary, err = m.Value.AsOptString("constraints.data_boundary")
		case "requires_human_review":
			// null is allowed (the model's type is Optional[bool]) and signed as null.
			if reviewNull = m.Value.Kind == canonical.Null; !reviewNull {
				c.RequiresHumanReview, err = m.Value.AsBool("constraints.requires_human_review")
			}
		default:
			return nil, false, malformed("unknown constraints field %q", m.Key)
		}
		if err != nil {
			return nil, false, malformedField(err)
		}
	}
	return c, reviewNull, nil
}

// decodeProvenance also reports whether delegation_depth is null or absent (the model's
// default).
func decodeProvenance(v *canonical.Value) (p *Provenance, depthNull bool, err error) {
	if obj, err := v.AsOptObject("provenance"); obj == nil { // null, or not an object
		return nil, false, malformedField(err)
	}
	p, depthNull = &Provenance{}, true
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "origin_workflow":
			p.OriginWorkflow, err = m.Value.AsOptString("provenance.origin_workflow")
		case "delegation_depth":
			if depthNull = m.Value.Kind == canonical.Null; !depthNull {
				p.DelegationDepth, err = m.Value.AsInt64("provenance.delegation_depth")
			}
		default:
			return nil, false, malformed("unknown provenance field %q", m.Key)
		}
		if err != nil {
			return nil, false, malformedField(err)
		}
	}
	return p, depthNull, nil
}
