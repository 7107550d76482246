package packet

import (
	"encoding/base64"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Limits bound decoding (DESIGN §4). The zero value means the defaults: 1 MiB, depth 64.
type Limits = canonical.Limits

func malformed(format string, args ...any) error {
	return reason.New(reason.MalformedEnvelope, fmt.Sprintf(format, args...))
}

// ParseEnvelope strictly decodes a DelegationEnvelope. Every failure is a *reason.Error with
// code malformed_envelope.
func ParseEnvelope(data []byte, lim Limits) (*Envelope, error) {
	v, err := canonical.Parse(data, lim)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "envelope is not valid JSON", err)
	}
	return EnvelopeFromValue(&v)
}

// EnvelopeFromValue decodes an already parsed envelope.
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
			env.Capabilities, err = stringList(&m.Value, "capabilities")
		case "approvals":
			if m.Value.Kind != canonical.Array {
				return nil, malformed("approvals must be an array")
			}
			env.Approvals = m.Value.Arr
		default:
			return nil, malformed("unknown envelope field %q", m.Key)
		}
		if err != nil {
			return nil, err
		}
	}
	if env.Packet == nil {
		return nil, malformed("envelope has no packet")
	}
	return env, nil
}

// ParsePacket strictly decodes a bare SignedTaskPacket.
func ParsePacket(data []byte, lim Limits) (*Packet, error) {
	v, err := canonical.Parse(data, lim)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "packet is not valid JSON", err)
	}
	return FromValue(&v)
}

func decodeChain(v *canonical.Value) (*Chain, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	if v.Kind != canonical.Object {
		return nil, malformed("chain must be an object")
	}
	c := &Chain{PacketIDs: []string{}, Agents: []string{}, Hops: []canonical.Value{}}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "packet_ids":
			c.PacketIDs, err = stringList(&m.Value, "chain.packet_ids")
		case "agents":
			c.Agents, err = stringList(&m.Value, "chain.agents")
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
			return nil, err
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
	hasSignature
	hasPublicKey
	required = 1<<iota - 1
)

var requiredNames = []string{"packet_id", "task_id", "from_agent", "to_agent", "issued_at", "expires_at", "nonce", "intent", "permissions", "signature", "public_key"}

// FromValue decodes a packet object. Absent optional fields take the reference model's
// defaults (null, [], {}), exactly as pydantic fills them in before signing or verifying.
func FromValue(v *canonical.Value) (*Packet, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("packet must be a JSON object, not %s", v.Kind)
	}
	p := &Packet{
		Context:       canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{}},
		MemoryRefs:    []string{},
		SignatureAlgo: "Ed25519",
	}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		val := &m.Value
		var err error
		switch m.Key {
		case "packet_id":
			p.PacketID, err = str(val, m.Key)
			seen |= hasPacketID
		case "task_id":
			p.TaskID, err = str(val, m.Key)
			seen |= hasTaskID
		case "from_agent":
			p.FromAgent, err = str(val, m.Key)
			seen |= hasFrom
		case "to_agent":
			p.ToAgent, err = str(val, m.Key)
			seen |= hasTo
		case "issued_at":
			p.IssuedAt, err = timestamp(val, m.Key)
			seen |= hasIssued
		case "expires_at":
			p.ExpiresAt, err = timestamp(val, m.Key)
			seen |= hasExpires
		case "nonce":
			p.Nonce, err = str(val, m.Key)
			seen |= hasNonce
		case "capability_token":
			p.CapabilityToken, err = optStr(val, m.Key)
		case "intent":
			p.Intent, err = str(val, m.Key)
			seen |= hasIntent
		case "task_type":
			p.TaskType, err = optStr(val, m.Key)
		case "goal":
			p.Goal, err = optStr(val, m.Key)
		case "context":
			if val.Kind != canonical.Object {
				return nil, malformed("context must be an object, not %s", val.Kind)
			}
			p.Context = *val
		case "memory_refs":
			p.MemoryRefs, err = stringList(val, m.Key)
		case "permissions":
			p.Permissions, err = decodePermissions(val)
			seen |= hasPermissions
		case "constraints":
			p.Constraints, err = decodeConstraints(val)
		case "provenance":
			p.Provenance, err = decodeProvenance(val)
		case "signature_algo":
			p.SignatureAlgo, err = str(val, m.Key)
		case "signature":
			p.Signature, err = str(val, m.Key)
			seen |= hasSignature
		case "public_key":
			p.PublicKey, err = str(val, m.Key)
			seen |= hasPublicKey
		case "risk_level":
			p.RiskLevel, err = optStr(val, m.Key)
		case "ttl_seconds":
			p.TTLSeconds, err = optInt(val, m.Key)
		case "ai_provenance":
			switch val.Kind {
			case canonical.Null:
			case canonical.Object:
				p.AIProvenance = val
			default:
				return nil, malformed("ai_provenance must be an object or null, not %s", val.Kind)
			}
		default:
			return nil, malformed("unknown packet field %q (unsigned extra fields are rejected)", m.Key)
		}
		if err != nil {
			return nil, err
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

func str(v *canonical.Value, name string) (string, error) {
	if v.Kind != canonical.String {
		return "", malformed("%s must be a string, not %s", name, v.Kind)
	}
	return v.Str, nil
}

func optStr(v *canonical.Value, name string) (*string, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	s, err := str(v, name)
	return &s, err
}

func optInt(v *canonical.Value, name string) (*int64, error) {
	switch v.Kind {
	case canonical.Null:
		return nil, nil
	case canonical.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, malformed("%s is out of the 64-bit integer range", name)
		}
		return &n, nil
	}
	return nil, malformed("%s must be an integer or null, not %s", name, v.Kind)
}

func stringList(v *canonical.Value, name string) ([]string, error) {
	if v.Kind != canonical.Array {
		return nil, malformed("%s must be an array of strings, not %s", name, v.Kind)
	}
	out := make([]string, len(v.Arr))
	for i := range v.Arr {
		if v.Arr[i].Kind != canonical.String {
			return nil, malformed("%s[%d] must be a string, not %s", name, i, v.Arr[i].Kind)
		}
		out[i] = v.Arr[i].Str
	}
	return out, nil
}

func timestamp(v *canonical.Value, name string) (canonical.Timestamp, error) {
	if v.Kind != canonical.String {
		return canonical.Timestamp{}, malformed("%s must be an RFC 3339 string, not %s", name, v.Kind)
	}
	ts, err := canonical.ParseTimestamp(v.Str)
	if err != nil {
		return canonical.Timestamp{}, reason.Wrap(reason.MalformedEnvelope, name, err)
	}
	return ts, nil
}

func decodePermissions(v *canonical.Value) (Permissions, error) {
	var p Permissions
	if v.Kind != canonical.Object {
		return p, malformed("permissions must be an object, not %s", v.Kind)
	}
	hasActions := false
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "allowed_actions":
			p.AllowedActions, err = stringList(&m.Value, "permissions.allowed_actions")
			hasActions = true
		case "max_tool_calls":
			p.MaxToolCalls, err = optInt(&m.Value, "permissions.max_tool_calls")
		default:
			return p, malformed("unknown permissions field %q", m.Key)
		}
		if err != nil {
			return p, err
		}
	}
	if !hasActions {
		return p, malformed("permissions has no allowed_actions")
	}
	return p, nil
}

func decodeConstraints(v *canonical.Value) (*Constraints, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	if v.Kind != canonical.Object {
		return nil, malformed("constraints must be an object or null, not %s", v.Kind)
	}
	c := &Constraints{}
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "max_runtime_seconds":
			c.MaxRuntimeSeconds, err = optInt(&m.Value, "constraints.max_runtime_seconds")
		case "data_boundary":
			c.DataBoundary, err = optStr(&m.Value, "constraints.data_boundary")
		case "requires_human_review":
			if m.Value.Kind != canonical.Bool {
				return nil, malformed("constraints.requires_human_review must be a boolean, not %s", m.Value.Kind)
			}
			c.RequiresHumanReview = m.Value.Bool
		default:
			return nil, malformed("unknown constraints field %q", m.Key)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

func decodeProvenance(v *canonical.Value) (*Provenance, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	if v.Kind != canonical.Object {
		return nil, malformed("provenance must be an object or null, not %s", v.Kind)
	}
	p := &Provenance{}
	for i := range v.Obj {
		m := &v.Obj[i]
		switch m.Key {
		case "origin_workflow":
			s, err := optStr(&m.Value, "provenance.origin_workflow")
			if err != nil {
				return nil, err
			}
			p.OriginWorkflow = s
		case "delegation_depth":
			n, err := optInt(&m.Value, "provenance.delegation_depth")
			if err != nil {
				return nil, err
			}
			if n == nil {
				return nil, malformed("provenance.delegation_depth must be an integer")
			}
			p.DelegationDepth = *n
		default:
			return nil, malformed("unknown provenance field %q", m.Key)
		}
	}
	return p, nil
}
