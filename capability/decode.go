package capability

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

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

// DecodeToken strictly decodes a capability token. It accepts exactly the spelling
// [Capability.Token] produces (so Token returns the input), and nothing looser: every
// failure is a *reason.Error with code malformed_envelope. The signature is decoded but
// not verified; that is [VerifyChain]'s job.
func DecodeToken(token string, lim Limits) (*Capability, error) {
	maxBytes := lim.MaxBytes
	if maxBytes <= 0 {
		maxBytes = canonical.DefaultMaxBytes
	}
	if token == "" {
		return nil, malformed("capability token is empty")
	}
	if len(token) > base64.RawURLEncoding.EncodedLen(maxBytes) {
		return nil, malformed("capability token is over the %d-byte limit", maxBytes)
	}
	// The decoder skips CR and LF even in strict mode; a canonical token has neither.
	// Padding is not in the RawURL alphabet, and Strict rejects non-zero trailing bits.
	if strings.ContainsAny(token, "\r\n") {
		return nil, malformed("capability token is not canonical base64url (line break)")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return nil, malformed("capability token is not canonical base64url without padding")
	}
	v, err := canonical.Parse(raw, lim)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "capability token is not valid JSON", err)
	}
	c, err := fromValue(&v)
	if err != nil {
		return nil, err
	}
	var buf [1024]byte
	if !bytes.Equal(c.appendJSON(buf[:0], false), raw) {
		return nil, malformed("capability token JSON is not canonical (want compact, key-sorted, ASCII-escaped, datetimes as the reference writes them)")
	}
	return c, nil
}

// DecodeChain decodes tokens, root first, with [DecodeToken]. Errors name the failing index.
func DecodeChain(tokens []string, lim Limits) ([]*Capability, error) {
	if len(tokens) == 0 {
		return nil, malformed("capability chain is empty")
	}
	chain := make([]*Capability, len(tokens))
	for i, t := range tokens {
		c, err := DecodeToken(t, lim)
		if err != nil {
			return nil, reason.Wrap(reason.MalformedEnvelope, fmt.Sprintf("capability %d", i), err)
		}
		chain[i] = c
	}
	return chain, nil
}

// Field presence bits.
const (
	hasID = 1 << iota
	hasIssuer
	hasSubject
	hasPermissions
	hasConstraints
	hasIssued
	hasExpires
	hasParent
	hasAlgo
	hasSignature
	hasPublicKey
	hasAll = 1<<iota - 1
)

var fieldNames = [...]string{
	"capability_id", "issuer_agent", "subject_agent", "delegated_permissions", "constraints",
	"issued_at", "expires_at", "parent_capability_id", "signature_algo", "signature", "public_key",
}

// fromValue decodes a capability object. Every field is required (the reference always
// writes all of them, and a token must be canonical).
func fromValue(v *canonical.Value) (*Capability, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("capability must be a JSON object, not %s", v.Kind)
	}
	c := &Capability{}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		val := &m.Value
		var err error
		switch m.Key {
		case "capability_id":
			c.CapabilityID, err = val.AsID(m.Key)
			seen |= hasID
		case "issuer_agent":
			c.IssuerAgent, err = val.AsID(m.Key)
			seen |= hasIssuer
		case "subject_agent":
			c.SubjectAgent, err = val.AsID(m.Key)
			seen |= hasSubject
		case "delegated_permissions":
			c.Permissions, err = decodePermissions(val)
			seen |= hasPermissions
		case "constraints":
			c.Constraints, err = decodeConstraints(val)
			seen |= hasConstraints
		case "issued_at":
			c.IssuedAt, err = val.AsTimestamp(m.Key)
			seen |= hasIssued
		case "expires_at":
			c.ExpiresAt, err = val.AsTimestamp(m.Key)
			seen |= hasExpires
		case "parent_capability_id":
			if val.Kind != canonical.Null {
				var p string
				p, err = val.AsID(m.Key)
				c.ParentCapabilityID = &p
			}
			seen |= hasParent
		case "signature_algo":
			c.SignatureAlgo, err = val.AsString(m.Key)
			if err == nil && c.SignatureAlgo != Algorithm {
				err = malformed("signature_algo %q is not supported (only %s)", c.SignatureAlgo, Algorithm)
			}
			seen |= hasAlgo
		case "signature":
			c.Signature, err = val.AsString(m.Key)
			if err == nil {
				err = c.setSignature(c.Signature)
			}
			seen |= hasSignature
		case "public_key":
			c.PublicKey, err = val.AsString(m.Key)
			if err == nil {
				err = c.setPublicKey(c.PublicKey)
			}
			seen |= hasPublicKey
		default:
			return nil, malformed("unknown capability field %q (unsigned extra fields are rejected)", m.Key)
		}
		if err != nil {
			return nil, malformedField(err)
		}
	}
	if seen != hasAll {
		for i, name := range fieldNames {
			if seen&(1<<i) == 0 {
				return nil, malformed("capability has no %s", name)
			}
		}
	}
	return c, nil
}

func decodePermissions(v *canonical.Value) (Permissions, error) {
	var p Permissions
	if _, err := v.AsObject("delegated_permissions"); err != nil {
		return p, malformedField(err)
	}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "allowed_actions":
			p.AllowedActions, err = m.Value.AsStrings("delegated_permissions.allowed_actions")
			seen |= 1
		case "max_tool_calls":
			p.MaxToolCalls, err = optCount(&m.Value, "delegated_permissions.max_tool_calls")
			seen |= 2
		default:
			return p, malformed("unknown delegated_permissions field %q", m.Key)
		}
		if err != nil {
			return p, malformedField(err)
		}
	}
	if seen&1 == 0 {
		return p, malformed("delegated_permissions has no allowed_actions")
	}
	if seen&2 == 0 {
		return p, malformed("delegated_permissions has no max_tool_calls")
	}
	return p, nil
}

func decodeConstraints(v *canonical.Value) (*Constraints, error) {
	if obj, err := v.AsOptObject("constraints"); obj == nil { // null, or not an object
		return nil, malformedField(err)
	}
	c := &Constraints{}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "max_runtime_seconds":
			c.MaxRuntimeSeconds, err = optCount(&m.Value, "constraints.max_runtime_seconds")
			seen |= 1
		case "data_boundary":
			c.DataBoundary, err = m.Value.AsOptString("constraints.data_boundary")
			seen |= 2
		case "requires_human_review":
			c.RequiresHumanReview, err = m.Value.AsBool("constraints.requires_human_review")
			seen |= 4
		default:
			return nil, malformed("unknown constraints field %q", m.Key)
		}
		if err != nil {
			return nil, malformedField(err)
		}
	}
	if seen != 7 {
		return nil, malformed("constraints must have max_runtime_seconds, data_boundary and requires_human_review")
	}
	return c, nil
}

// optCount decodes null or a non-negative integer that fits an int64. A float spelling
// (3.0, 1e2) or a string is rejected: the reference's pydantic model would coerce them,
// but the token would then not be what was signed.
func optCount(v *canonical.Value, name string) (*int64, error) {
	n, err := v.AsOptInt64(name)
	if err == nil && n != nil && *n < 0 {
		return nil, malformed("%s must not be negative, got %d", name, *n)
	}
	return n, err
}

// setSignature decodes sig (canonical standard base64 of exactly 64 bytes) into the cache.
func (c *Capability) setSignature(sig string) error {
	b, err := decodeSignature(sig)
	if err != nil {
		return err
	}
	c.sig, c.sigText = b, sig
	return nil
}

func decodeSignature(sig string) ([ed25519.SignatureSize]byte, error) {
	var out [ed25519.SignatureSize]byte
	const want = 88 // base64.StdEncoding.EncodedLen(64)
	if len(sig) != want {
		return out, malformed("signature must be the standard base64 of 64 bytes (88 characters), got %d characters", len(sig))
	}
	var buf [66]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(sig))
	if err != nil || n != ed25519.SignatureSize {
		return out, malformed("signature is not canonical standard base64 of 64 bytes")
	}
	copy(out[:], buf[:n])
	// Strict still skips CR/LF; re-encoding catches any such spelling.
	var enc [want]byte
	base64.StdEncoding.Encode(enc[:], out[:])
	if string(enc[:]) != sig {
		return out, malformed("signature is not canonical standard base64 of 64 bytes")
	}
	return out, nil
}

// setPublicKey parses pemText (canonical Ed25519 SPKI PEM) into the cache.
func (c *Capability) setPublicKey(pemText string) error {
	pub, err := parsePublicKey(pemText)
	if err != nil {
		return err
	}
	c.pub, c.pubText = pub, pemText
	return nil
}

// The canonical SPKI PEM of an Ed25519 key is fixed but for the 32 key bytes:
// identity.PublicKeyPEM writes exactly pemHead + base64(spkiPrefix || key) + pemTail.
const (
	pemHead = "-----BEGIN PUBLIC KEY-----\n"
	pemTail = "\n-----END PUBLIC KEY-----\n"
	pemBody = 60 // base64 of the 44-byte DER
)

var spkiPrefix = [...]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}

// parsePublicKey parses canonical Ed25519 SPKI PEM text. The common case is a fixed-layout
// fast path; anything else goes to identity.ParsePublicKeyPEM, the authority, for its
// verdict and error message.
func parsePublicKey(pemText string) (ed25519.PublicKey, error) {
	if pub, ok := parsePublicKeyFast(pemText); ok {
		if err := identity.CheckPublicKey(pub); err != nil { // small order, non-canonical
			return nil, reason.Wrap(reason.MalformedEnvelope, "public_key", err)
		}
		return pub, nil
	}
	pub, err := identity.ParsePublicKeyPEM(pemText)
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "public_key", err)
	}
	return pub, nil
}

func parsePublicKeyFast(pemText string) (ed25519.PublicKey, bool) {
	if len(pemText) != len(pemHead)+pemBody+len(pemTail) ||
		!strings.HasPrefix(pemText, pemHead) || !strings.HasSuffix(pemText, pemTail) {
		return nil, false
	}
	body := pemText[len(pemHead) : len(pemHead)+pemBody]
	var der [45]byte
	n, err := base64.StdEncoding.Strict().Decode(der[:], []byte(body))
	if err != nil || n != len(spkiPrefix)+ed25519.PublicKeySize || [12]byte(der[:12]) != spkiPrefix {
		return nil, false
	}
	var enc [pemBody]byte
	base64.StdEncoding.Encode(enc[:], der[:n])
	if string(enc[:]) != body {
		return nil, false
	}
	return ed25519.PublicKey(bytes.Clone(der[12:n])), true
}

// keys returns c's public key and signature, from the cache when it is current. It never
// writes to c, so concurrent verifications of one Capability are safe.
func (c *Capability) keys() (ed25519.PublicKey, [ed25519.SignatureSize]byte, error) {
	pub, sig := c.pub, c.sig
	if c.pub == nil || c.pubText != c.PublicKey {
		var err error
		if pub, err = parsePublicKey(c.PublicKey); err != nil {
			return nil, sig, err
		}
	}
	if c.sigText != c.Signature || c.sigText == "" {
		var err error
		if sig, err = decodeSignature(c.Signature); err != nil {
			return nil, sig, err
		}
	}
	return pub, sig, nil
}
