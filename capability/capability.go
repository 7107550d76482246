package capability

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"

	"github.com/trusthandoff/trusthandoff-go/canonical"
)

// Algorithm is the only signature algorithm a capability may name.
const Algorithm = "Ed25519"

// Permissions are the actions a capability delegates (the reference's
// delegated_permissions). Its fields match packet.Permissions, so one converts to the other.
type Permissions struct {
	AllowedActions []string
	MaxToolCalls   *int64 // nil: no limit
}

// Constraints bound how the delegate may execute. Its fields match packet.Constraints, so
// one converts to the other.
type Constraints struct {
	MaxRuntimeSeconds   *int64  // nil: no limit
	DataBoundary        *string // nil: no boundary
	RequiresHumanReview bool
}

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
// Keys are written in sorted order; every key is ASCII so the order is fixed.
func (c *Capability) appendJSON(dst []byte, signing bool) []byte {
	e := encoder{dst: dst, comma: ",", colon: ":", times: canonical.ISOZ}
	if signing {
		e.comma, e.colon, e.times = ", ", ": ", canonical.PyStr
	}
	e.open()
	e.key("capability_id")
	e.str(c.CapabilityID)
	e.key("constraints")
	if k := c.Constraints; k == nil {
		e.null()
	} else {
		e.open()
		e.key("data_boundary")
		e.optStr(k.DataBoundary)
		e.key("max_runtime_seconds")
		e.optInt(k.MaxRuntimeSeconds)
		e.key("requires_human_review")
		e.bool(k.RequiresHumanReview)
		e.close()
	}
	e.key("delegated_permissions")
	e.open()
	e.key("allowed_actions")
	e.dst = append(e.dst, '[')
	for i, a := range c.Permissions.AllowedActions {
		if i > 0 {
			e.dst = append(e.dst, e.comma...)
		}
		e.str(a)
	}
	e.dst = append(e.dst, ']')
	e.key("max_tool_calls")
	e.optInt(c.Permissions.MaxToolCalls)
	e.close()
	e.key("expires_at")
	e.time(c.ExpiresAt)
	e.key("issued_at")
	e.time(c.IssuedAt)
	e.key("issuer_agent")
	e.str(c.IssuerAgent)
	e.key("parent_capability_id")
	e.optStr(c.ParentCapabilityID)
	e.key("public_key")
	e.str(c.PublicKey)
	if !signing {
		e.key("signature")
		e.str(c.Signature)
	}
	e.key("signature_algo")
	e.str(c.SignatureAlgo)
	e.key("subject_agent")
	e.str(c.SubjectAgent)
	e.close()
	return e.dst
}

// encoder writes the fixed-shape JSON of a capability in one of its two dialects.
type encoder struct {
	dst          []byte
	comma, colon string
	times        canonical.TimeStyle
	first        bool // no member written yet in the current object
}

func (e *encoder) open() { e.dst = append(e.dst, '{'); e.first = true }

func (e *encoder) close() { e.dst = append(e.dst, '}'); e.first = false }

func (e *encoder) key(k string) {
	if !e.first {
		e.dst = append(e.dst, e.comma...)
	}
	e.first = false
	e.dst = append(e.dst, '"')
	e.dst = append(e.dst, k...)
	e.dst = append(e.dst, '"')
	e.dst = append(e.dst, e.colon...)
}

func (e *encoder) null() { e.dst = append(e.dst, "null"...) }

func (e *encoder) str(s string) { e.dst = canonical.AppendString(e.dst, s, true) }

func (e *encoder) optStr(s *string) {
	if s == nil {
		e.null()
		return
	}
	e.str(*s)
}

func (e *encoder) optInt(n *int64) {
	if n == nil {
		e.null()
		return
	}
	e.dst = strconv.AppendInt(e.dst, *n, 10)
}

func (e *encoder) bool(b bool) {
	if b {
		e.dst = append(e.dst, "true"...)
	} else {
		e.dst = append(e.dst, "false"...)
	}
}

func (e *encoder) time(ts canonical.Timestamp) {
	e.dst = append(e.dst, '"')
	e.dst = canonical.AppendTimestamp(e.dst, ts, e.times)
	e.dst = append(e.dst, '"')
}
