package receipt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/bits"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Version is the receipt format version; it is also the signature's domain separator.
const Version = "trusthandoff/receipt/v1"

// Algorithm is the only signature_algo of version 1.
const Algorithm = "ed25519"

// HashPrefix starts outcome_hash and reason_hash ("sha256:" + 64 lowercase hex digits).
const HashPrefix = "sha256:"

// Limits of what Parse accepts.
const (
	// MaxSize bounds the wire JSON of one receipt.
	MaxSize = 64 << 10
	// MaxDependsOn bounds the receipts one receipt may depend on.
	MaxDependsOn = 256
	// MaxIDLen bounds receipt_id and packet_id, in bytes.
	MaxIDLen = 256
)

// Status is the outcome class a receipt reports: the statuses of attestations.
type Status = attest.Status

// The five statuses.
const (
	StatusOK       = attest.StatusOK
	StatusError    = attest.StatusError
	StatusPartial  = attest.StatusPartial
	StatusRejected = attest.StatusRejected
	StatusTimeout  = attest.StatusTimeout
)

// Receipt is a signed statement by the executor of a handoff: what it did with the packet
// whose signed bytes hash to PacketDigest, when, and with which result. Fixed-size fields
// hold their decoded bytes; a Receipt from Parse is well-formed.
type Receipt struct {
	Version      string
	ReceiptID    string
	PacketDigest [32]byte // approval.Digest of the packet (sha256 of its signed bytes)
	PacketID     string
	Executor     string // agent id of the executor: the packet's to_agent
	Status       Status
	OutcomeHash  [32]byte  // sha256 of the outcome bytes
	ReasonHash   *[32]byte // sha256 of the reason bytes; nil for null
	StartedAt    time.Time // UTC, microsecond precision
	FinishedAt   time.Time // UTC, microsecond precision
	Nonce        [16]byte  // 128 random bits, 32 lowercase hex digits on the wire
	DependsOn    [][32]byte
	Signature    [64]byte
	PublicKey    string // the executor's SPKI PEM
}

// HashBytes returns the hash an outcome_hash or reason_hash holds for b: sha256(b).
func HashBytes(b []byte) [32]byte { return sha256.Sum256(b) }

// FormatHash returns the wire form of a hash: "sha256:" + lowercase hex.
func FormatHash(h [32]byte) string { return HashPrefix + hex.EncodeToString(h[:]) }

// Digest returns the receipt's digest, the value other receipts name in depends_on:
// sha256 of the bytes the signature covers (SigningBytes).
func (r *Receipt) Digest() ([32]byte, error) {
	msg, err := r.SigningBytes()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(msg), nil
}

// SigningBytes returns the signed message: the version line, then the compact, sorted,
// ASCII-escaped JSON of every field but the signature.
func (r *Receipt) SigningBytes() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return r.appendSigning(make([]byte, 0, 1024)), nil
}

// appendSigning appends the signed message of a checked receipt (r.check passed). It
// writes what canonical.Append of value(false) writes, field by field and without building
// the value: verification re-encodes every receipt, so this is on its hot path. Fields
// whose check allows only plain ASCII (hex, ids, times, status) are copied; the others go
// through canonical.AppendString. A test holds the two encodings equal.
func (r *Receipt) appendSigning(dst []byte) []byte {
	dst = append(dst, Version...)
	dst = append(dst, "\n{\"depends_on\":["...)
	for i := range r.DependsOn {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, r.DependsOn[i][:])
		dst = append(dst, '"')
	}
	dst = append(dst, "],\"executor\":"...)
	dst = canonical.AppendString(dst, r.Executor, true)
	dst = append(dst, ",\"finished_at\":\""...)
	dst = appendTime(dst, r.FinishedAt)
	dst = append(dst, "\",\"nonce\":\""...)
	dst = hex.AppendEncode(dst, r.Nonce[:])
	dst = append(dst, "\",\"outcome_hash\":\""+HashPrefix...)
	dst = hex.AppendEncode(dst, r.OutcomeHash[:])
	dst = append(dst, "\",\"packet_digest\":\""...)
	dst = hex.AppendEncode(dst, r.PacketDigest[:])
	dst = append(dst, "\",\"packet_id\":"...)
	dst = canonical.AppendString(dst, r.PacketID, true)
	dst = append(dst, ",\"public_key\":"...)
	dst = canonical.AppendString(dst, r.PublicKey, true)
	if r.ReasonHash == nil {
		dst = append(dst, ",\"reason_hash\":null"...)
	} else {
		dst = append(dst, ",\"reason_hash\":\""+HashPrefix...)
		dst = hex.AppendEncode(dst, r.ReasonHash[:])
		dst = append(dst, '"')
	}
	dst = append(dst, ",\"receipt_id\":\""...)
	dst = append(dst, r.ReceiptID...) // validID: A-Z a-z 0-9 . _ : -
	dst = append(dst, "\",\"signature_algo\":\""+Algorithm+"\",\"started_at\":\""...)
	dst = appendTime(dst, r.StartedAt)
	dst = append(dst, "\",\"status\":\""...)
	dst = append(dst, r.Status...) // Valid: one of five upper-case words
	dst = append(dst, "\",\"version\":\""+Version+"\"}"...)
	return dst
}

// appendTime appends formatTime(t).
func appendTime(dst []byte, t time.Time) []byte {
	return canonical.AppendTimestamp(dst, canonical.TimestampOf(t.UTC()), canonical.ISOZ)
}

// Marshal returns the wire JSON of r: compact, fields in sorted order, ASCII-escaped.
func (r *Receipt) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	v := r.value(true)
	return canonical.Marshal(&v, canonical.CompactSorted())
}

// MarshalJSON implements json.Marshaler with Marshal.
func (r *Receipt) MarshalJSON() ([]byte, error) { return r.Marshal() }

// UnmarshalJSON implements json.Unmarshaler with the strict rules of Parse.
func (r *Receipt) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*r = *p
	return nil
}

// value returns the receipt as a JSON object, members in sorted order.
func (r *Receipt) value(withSig bool) canonical.Value {
	str := func(s string) canonical.Value { return canonical.Value{Kind: canonical.String, Str: s} }
	ts := func(t time.Time) canonical.Value { return str(formatTime(t)) }
	deps := make([]canonical.Value, len(r.DependsOn))
	for i := range r.DependsOn {
		deps[i] = str(hex.EncodeToString(r.DependsOn[i][:]))
	}
	why := canonical.Value{Kind: canonical.Null}
	if r.ReasonHash != nil {
		why = str(FormatHash(*r.ReasonHash))
	}
	m := make([]canonical.Member, 0, 15)
	m = append(m,
		canonical.Member{Key: "depends_on", Value: canonical.Value{Kind: canonical.Array, Arr: deps}},
		canonical.Member{Key: "executor", Value: str(r.Executor)},
		canonical.Member{Key: "finished_at", Value: ts(r.FinishedAt)},
		canonical.Member{Key: "nonce", Value: str(hex.EncodeToString(r.Nonce[:]))},
		canonical.Member{Key: "outcome_hash", Value: str(FormatHash(r.OutcomeHash))},
		canonical.Member{Key: "packet_digest", Value: str(hex.EncodeToString(r.PacketDigest[:]))},
		canonical.Member{Key: "packet_id", Value: str(r.PacketID)},
		canonical.Member{Key: "public_key", Value: str(r.PublicKey)},
		canonical.Member{Key: "reason_hash", Value: why},
		canonical.Member{Key: "receipt_id", Value: str(r.ReceiptID)},
	)
	if withSig {
		m = append(m, canonical.Member{Key: "signature", Value: str(base64.StdEncoding.EncodeToString(r.Signature[:]))})
	}
	m = append(m,
		canonical.Member{Key: "signature_algo", Value: str(Algorithm)},
		canonical.Member{Key: "started_at", Value: ts(r.StartedAt)},
		canonical.Member{Key: "status", Value: str(string(r.Status))},
		canonical.Member{Key: "version", Value: str(r.Version)},
	)
	return canonical.Value{Kind: canonical.Object, Obj: m}
}

// formatTime writes t as the packet's datetimes are written (RFC 3339, UTC as "Z",
// microseconds when not whole seconds).
func formatTime(t time.Time) string {
	return canonical.FormatTimestamp(canonical.TimestampOf(t.UTC()), canonical.ISOZ)
}

func malformed(format string, args ...any) error {
	return reason.Wrap(reason.MalformedEnvelope, "receipt: "+fmt.Sprintf(format, args...), ErrMalformed)
}

// Parse strictly decodes the wire JSON of a receipt: one JSON object of at most MaxSize
// bytes, every field present exactly once with its JSON type (reason_hash may be null),
// no unknown fields, and every value in its one canonical spelling, so that a receipt has
// one wire form per signed content. Every failure is a *reason.Error with code
// malformed_envelope wrapping ErrMalformed.
func Parse(data []byte) (*Receipt, error) {
	// Depth 2: the object and the depends_on array.
	v, err := canonical.Parse(data, canonical.Limits{MaxBytes: MaxSize, MaxDepth: 2})
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "receipt is not valid JSON", fmt.Errorf("%w: %w", ErrMalformed, err))
	}
	return FromValue(&v)
}

// field presence bits, in fieldNames order.
const (
	hasVersion = 1 << iota
	hasReceiptID
	hasPacketDigest
	hasPacketID
	hasExecutor
	hasStatus
	hasOutcome
	hasReason
	hasStarted
	hasFinished
	hasNonce
	hasDependsOn
	hasAlgo
	hasSignature
	hasPublicKey
	allFields = hasPublicKey<<1 - 1
)

var fieldNames = [...]string{"version", "receipt_id", "packet_digest", "packet_id", "executor",
	"status", "outcome_hash", "reason_hash", "started_at", "finished_at", "nonce", "depends_on",
	"signature_algo", "signature", "public_key"}

// FromValue decodes an already parsed receipt (one embedded in a larger document, such
// as a bundle) with the rules of Parse.
func FromValue(v *canonical.Value) (*Receipt, error) {
	if v == nil || v.Kind != canonical.Object {
		return nil, malformed("must be a JSON object")
	}
	r := &Receipt{}
	seen := 0
	for i := range v.Obj {
		m := &v.Obj[i]
		var bit int
		var err error
		switch m.Key {
		case "version":
			bit = hasVersion
			if r.Version, err = str(&m.Value, m.Key); err == nil && r.Version != Version {
				err = malformed("unsupported version %q", truncate(r.Version))
			}
		case "receipt_id":
			bit = hasReceiptID
			r.ReceiptID, err = id(&m.Value, m.Key)
		case "packet_digest":
			bit = hasPacketDigest
			err = hexHash(&r.PacketDigest, &m.Value, m.Key, "")
		case "packet_id":
			bit = hasPacketID
			r.PacketID, err = text(&m.Value, m.Key)
		case "executor":
			bit = hasExecutor
			if r.Executor, err = str(&m.Value, m.Key); err == nil {
				if cerr := packet.CheckAgentID(r.Executor); cerr != nil {
					err = reason.Wrap(reason.MalformedEnvelope, "receipt: executor", fmt.Errorf("%w: %w", ErrMalformed, cerr))
				}
			}
		case "status":
			bit = hasStatus
			var s string
			if s, err = str(&m.Value, m.Key); err == nil {
				r.Status = Status(s)
				if !r.Status.Valid() {
					err = malformed("status %q is not one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT", truncate(s))
				}
			}
		case "outcome_hash":
			bit = hasOutcome
			err = hexHash(&r.OutcomeHash, &m.Value, m.Key, HashPrefix)
		case "reason_hash":
			bit = hasReason
			if m.Value.Kind != canonical.Null {
				r.ReasonHash = new([32]byte)
				err = hexHash(r.ReasonHash, &m.Value, m.Key, HashPrefix)
			}
		case "started_at":
			bit = hasStarted
			r.StartedAt, err = timestamp(&m.Value, m.Key)
		case "finished_at":
			bit = hasFinished
			r.FinishedAt, err = timestamp(&m.Value, m.Key)
		case "nonce":
			bit = hasNonce
			var s string
			if s, err = str(&m.Value, m.Key); err == nil {
				if len(s) != 32 || !lowerHex(s) {
					err = malformed("nonce must be 32 lowercase hex digits (128 bits)")
				} else {
					_, _ = hex.Decode(r.Nonce[:], []byte(s)) // cannot fail: checked above
				}
			}
		case "depends_on":
			bit = hasDependsOn
			r.DependsOn, err = dependsOn(&m.Value)
		case "signature_algo":
			bit = hasAlgo
			var s string
			if s, err = str(&m.Value, m.Key); err == nil && s != Algorithm {
				err = reason.Wrap(reason.UnsupportedAlgorithm, fmt.Sprintf("receipt: signature_algo %q is not %q", truncate(s), Algorithm), ErrMalformed)
			}
		case "signature":
			bit = hasSignature
			var s string
			if s, err = str(&m.Value, m.Key); err == nil {
				var sig []byte
				if sig, err = packet.SignatureBytes(s); err == nil {
					copy(r.Signature[:], sig)
				} else {
					err = malformed("signature must be canonical standard base64 of 64 bytes")
				}
			}
		case "public_key":
			bit = hasPublicKey
			if r.PublicKey, err = str(&m.Value, m.Key); err == nil {
				if _, kerr := identity.ParsePublicKeyPEM(r.PublicKey); kerr != nil {
					err = reason.Wrap(reason.MalformedEnvelope, "receipt: public_key", fmt.Errorf("%w: %w", ErrMalformed, kerr))
				}
			}
		default:
			return nil, malformed("unknown field %q", truncate(m.Key))
		}
		if err != nil {
			return nil, err
		}
		// canonical.Parse rejects duplicate keys; this keeps FromValue safe on a hand-built Value.
		if seen&bit != 0 {
			return nil, malformed("duplicate field %q", m.Key)
		}
		seen |= bit
	}
	if missing := allFields &^ seen; missing != 0 {
		return nil, malformed("no %s", fieldNames[bits.TrailingZeros(uint(missing))])
	}
	if r.FinishedAt.Before(r.StartedAt) {
		return nil, malformed("finished_at is before started_at")
	}
	return r, nil
}

func fieldErr(err error) error {
	return reason.Wrap(reason.MalformedEnvelope, "receipt", fmt.Errorf("%w: %w", ErrMalformed, err))
}

func str(v *canonical.Value, name string) (string, error) {
	s, err := v.AsString(name)
	if err != nil {
		return "", fieldErr(err)
	}
	return s, nil
}

// text reads packet_id: non-empty valid UTF-8 of at most MaxIDLen bytes.
func text(v *canonical.Value, name string) (string, error) {
	s, err := str(v, name)
	switch {
	case err != nil:
		return "", err
	case s == "" || len(s) > MaxIDLen:
		return "", malformed("%s must be 1 to %d bytes", name, MaxIDLen)
	case !utf8.ValidString(s):
		return "", malformed("%s is not valid UTF-8", name)
	}
	return s, nil
}

// id reads receipt_id: 1 to MaxIDLen characters of A-Z a-z 0-9 . _ : -.
func id(v *canonical.Value, name string) (string, error) {
	s, err := str(v, name)
	if err != nil {
		return "", err
	}
	if !validID(s) {
		return "", malformed("%s must be 1 to %d of the characters A-Z a-z 0-9 . _ : -", name, MaxIDLen)
	}
	return s, nil
}

func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// hexHash decodes prefix + 64 lowercase hex digits.
func hexHash(dst *[32]byte, v *canonical.Value, name, prefix string) error {
	s, err := str(v, name)
	if err != nil {
		return err
	}
	if len(s) != len(prefix)+64 || s[:len(prefix)] != prefix || !lowerHex(s[len(prefix):]) {
		return malformed("%s must be %q and 64 lowercase hex digits", name, prefix)
	}
	_, _ = hex.Decode(dst[:], []byte(s[len(prefix):])) // cannot fail: checked above
	return nil
}

// timestamp reads a datetime in the one spelling formatTime writes: UTC, "Z".
func timestamp(v *canonical.Value, name string) (time.Time, error) {
	s, err := str(v, name)
	if err != nil {
		return time.Time{}, err
	}
	ts, err := canonical.ParseTimestamp(s)
	if err != nil {
		return time.Time{}, fieldErr(&canonical.FieldError{Field: name, Msg: "is not an RFC 3339 datetime", Err: err})
	}
	t := ts.Time().UTC()
	if ts.Offset != 0 || formatTime(t) != s {
		return time.Time{}, malformed("%s must be written in UTC as YYYY-MM-DDTHH:MM:SS[.ffffff]Z", name)
	}
	return t, nil
}

func dependsOn(v *canonical.Value) ([][32]byte, error) {
	if v.Kind != canonical.Array {
		return nil, malformed("depends_on must be an array, not %s", v.Kind)
	}
	if len(v.Arr) > MaxDependsOn {
		return nil, malformed("depends_on names %d receipts, more than %d", len(v.Arr), MaxDependsOn)
	}
	deps := make([][32]byte, len(v.Arr))
	for i := range v.Arr {
		if err := hexHash(&deps[i], &v.Arr[i], "depends_on", ""); err != nil {
			return nil, err
		}
		for j := range i {
			if deps[j] == deps[i] {
				return nil, malformed("depends_on names a receipt twice")
			}
		}
	}
	return deps, nil
}

// check enforces on a hand-built value what Parse enforces on the wire, so that
// everything Marshal emits parses back.
func (r *Receipt) check() error {
	switch {
	case r == nil:
		return malformed("no receipt")
	case r.Version != Version:
		return malformed("unsupported version %q", truncate(r.Version))
	case !validID(r.ReceiptID):
		return malformed("receipt_id must be 1 to %d of the characters A-Z a-z 0-9 . _ : -", MaxIDLen)
	case r.PacketID == "" || len(r.PacketID) > MaxIDLen || !utf8.ValidString(r.PacketID):
		return malformed("packet_id must be 1 to %d bytes of UTF-8", MaxIDLen)
	case packet.CheckAgentID(r.Executor) != nil:
		return malformed("executor is not an agent id")
	case !r.Status.Valid():
		return malformed("status %q is not one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT", truncate(string(r.Status)))
	case !representable(r.StartedAt) || !representable(r.FinishedAt):
		return malformed("started_at and finished_at must be UTC instants with microsecond precision in years 1-9999")
	case r.FinishedAt.Before(r.StartedAt):
		return malformed("finished_at is before started_at")
	case len(r.DependsOn) > MaxDependsOn:
		return malformed("depends_on names more than %d receipts", MaxDependsOn)
	case len(r.PublicKey) > 256:
		return malformed("public_key is not an Ed25519 SPKI PEM")
	}
	for i := range r.DependsOn {
		for j := range i {
			if r.DependsOn[j] == r.DependsOn[i] {
				return malformed("depends_on names a receipt twice")
			}
		}
	}
	return nil
}

// representable reports whether t survives formatTime and timestamp unchanged.
func representable(t time.Time) bool {
	return t.Location() == time.UTC && t.Nanosecond()%1000 == 0 && t.Year() >= 1 && t.Year() <= 9999
}

// publicKey parses the executor key (Parse has checked it; a hand-built receipt may not be).
func (r *Receipt) publicKey() (ed25519.PublicKey, error) {
	return identity.ParsePublicKeyPEM(r.PublicKey)
}

// truncate shortens attacker-controlled text quoted in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
