package capability

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// Algorithm is the only signature algorithm a capability may name.
const Algorithm = "Ed25519"

// Permissions are the actions a capability delegates (the reference's
// delegated_permissions). It is the packet's type: a packet asks for exactly what a
// capability can grant, with no conversion between them.
type Permissions = packet.Permissions

// Constraints bound how the delegate may execute. It is the packet's type.
type Constraints = packet.Constraints

// Capability is a DelegationCapability with the reference's fields.
//
// A Capability returned by [DecodeToken], [Issue] or [Derive] caches its decoded signature
// and public key; changing Signature or PublicKey afterwards is safe (the cache is keyed
// by their text) but of course invalidates the signature.
type Capability struct {
	CapabilityID       string
	IssuerAgent        string
	SubjectAgent       string
	Permissions        Permissions  // delegated_permissions
	Constraints        *Constraints // nil: null
	IssuedAt           canonical.Timestamp
	ExpiresAt          canonical.Timestamp
	ParentCapabilityID *string // nil for a root
	SignatureAlgo      string  // always "Ed25519"
	Signature          string  // standard base64 (padded) of the 64-byte Ed25519 signature
	PublicKey          string  // canonical SPKI PEM of the issuer's key

	// Decoded forms of Signature and PublicKey, valid while the text fields still equal
	// sigText and pubText.
	sig     [ed25519.SignatureSize]byte
	sigText string
	pub     ed25519.PublicKey
	pubText string
}

// Link describes c to [packet.Build], which sends a handoff under a chain of capabilities
// and takes its limits from them.
func (c *Capability) Link() packet.Link {
	return packet.Link{
		Token:              c.Token(),
		CapabilityID:       c.CapabilityID,
		ParentCapabilityID: c.ParentCapabilityID,
		IssuerAgent:        c.IssuerAgent,
		SubjectAgent:       c.SubjectAgent,
		Permissions:        c.Permissions,
		Constraints:        c.Constraints,
		ExpiresAt:          c.ExpiresAt,
	}
}

var _ packet.Linker = (*Capability)(nil)

// IsRoot reports whether c has no parent.
func (c *Capability) IsRoot() bool { return c.ParentCapabilityID == nil }

// Token returns c's token: base64url without padding of its compact, key-sorted JSON.
// For a decoded capability it is the token it was decoded from.
func (c *Capability) Token() string {
	var buf [1024]byte
	return base64.RawURLEncoding.EncodeToString(c.appendJSON(buf[:0], false))
}

// JSON returns the compact, key-sorted JSON a token encodes.
func (c *Capability) JSON() []byte { return c.appendJSON(nil, false) }

// SigningBytes returns the bytes the issuer signs: json.dumps(sort_keys=True) of every field
// but signature, with ", " / ": " separators, ASCII escapes and Python str() datetimes.
func (c *Capability) SigningBytes() []byte { return c.appendJSON(nil, true) }

// appendJSON appends the token JSON (signing false) or the signing bytes (signing true).
// Keys are written in sorted order; every key is ASCII so the order is fixed. Plain
// functions threading dst (no encoder struct) keep a caller's stack buffer on the stack.
func (c *Capability) appendJSON(dst []byte, signing bool) []byte {
	comma, colon, times := ",", ":", canonical.ISOZ
	if signing {
		comma, colon, times = ", ", ": ", canonical.PyStr
	}
	dst = append(dst, '{')
	dst = appendKey(dst, "", "capability_id", colon)
	dst = appendStr(dst, c.CapabilityID)
	dst = appendKey(dst, comma, "constraints", colon)
	if k := c.Constraints; k == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '{')
		dst = appendKey(dst, "", "data_boundary", colon)
		dst = appendOptStr(dst, k.DataBoundary)
		dst = appendKey(dst, comma, "max_runtime_seconds", colon)
		dst = appendOptInt(dst, k.MaxRuntimeSeconds)
		dst = appendKey(dst, comma, "requires_human_review", colon)
		dst = strconv.AppendBool(dst, k.RequiresHumanReview)
		dst = append(dst, '}')
	}
	dst = appendKey(dst, comma, "delegated_permissions", colon)
	dst = append(dst, '{')
	dst = appendKey(dst, "", "allowed_actions", colon)
	dst = append(dst, '[')
	for i, a := range c.Permissions.AllowedActions {
		if i > 0 {
			dst = append(dst, comma...)
		}
		dst = appendStr(dst, a)
	}
	dst = append(dst, ']')
	dst = appendKey(dst, comma, "max_tool_calls", colon)
	dst = appendOptInt(dst, c.Permissions.MaxToolCalls)
	dst = append(dst, '}')
	dst = appendKey(dst, comma, "expires_at", colon)
	dst = appendTime(dst, c.ExpiresAt, times)
	dst = appendKey(dst, comma, "issued_at", colon)
	dst = appendTime(dst, c.IssuedAt, times)
	dst = appendKey(dst, comma, "issuer_agent", colon)
	dst = appendStr(dst, c.IssuerAgent)
	dst = appendKey(dst, comma, "parent_capability_id", colon)
	dst = appendOptStr(dst, c.ParentCapabilityID)
	dst = appendKey(dst, comma, "public_key", colon)
	dst = appendStr(dst, c.PublicKey)
	if !signing {
		dst = appendKey(dst, comma, "signature", colon)
		dst = appendStr(dst, c.Signature)
	}
	dst = appendKey(dst, comma, "signature_algo", colon)
	dst = appendStr(dst, c.SignatureAlgo)
	dst = appendKey(dst, comma, "subject_agent", colon)
	dst = appendStr(dst, c.SubjectAgent)
	return append(dst, '}')
}

// appendKey appends sep, the quoted key (ASCII, nothing to escape) and colon.
func appendKey(dst []byte, sep, key, colon string) []byte {
	dst = append(dst, sep...)
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"')
	return append(dst, colon...)
}

func appendStr(dst []byte, s string) []byte { return canonical.AppendString(dst, s, true) }

func appendOptStr(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return appendStr(dst, *s)
}

func appendOptInt(dst []byte, n *int64) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, *n, 10)
}

func appendTime(dst []byte, ts canonical.Timestamp, style canonical.TimeStyle) []byte {
	dst = append(dst, '"')
	dst = canonical.AppendTimestamp(dst, ts, style)
	return append(dst, '"')
}
