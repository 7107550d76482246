package attest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Status is the outcome class an attestation reports.
type Status string

// The statuses of the reference (AttestationStatus).
const (
	StatusOK       Status = "OK"
	StatusError    Status = "ERROR"
	StatusPartial  Status = "PARTIAL"
	StatusRejected Status = "REJECTED"
	StatusTimeout  Status = "TIMEOUT"
)

// Valid reports whether s is one of the five statuses of the protocol.
func (s Status) Valid() bool {
	switch s {
	case StatusOK, StatusError, StatusPartial, StatusRejected, StatusTimeout:
		return true
	}
	return false
}

// Nonce is the attestation's 128-bit unsigned nonce, big-endian (the framed form). On the
// wire it is a JSON integer in decimal, 0 to 2^128-1.
type Nonce [16]byte

// ParseNonce parses the decimal digits of a nonce (no sign, no leading zeros except "0").
func ParseNonce(s string) (Nonce, error) {
	var n Nonce
	if s == "" || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return n, fmt.Errorf("nonce %q is not a decimal integer in [0, 2^128)", truncate(s))
	}
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i]) - '0'
		if d > 9 {
			return n, fmt.Errorf("nonce %q is not a decimal integer in [0, 2^128)", truncate(s))
		}
		// (hi, lo) = (hi, lo)*10 + d, failing on overflow of 128 bits.
		c, l := bits.Mul64(lo, 10)
		ov, h := bits.Mul64(hi, 10)
		h, carry := bits.Add64(h, c, 0)
		l, carry2 := bits.Add64(l, d, 0)
		h, carry3 := bits.Add64(h, 0, carry2)
		if ov != 0 || carry != 0 || carry3 != 0 {
			return n, fmt.Errorf("nonce %s is not below 2^128", truncate(s))
		}
		hi, lo = h, l
	}
	binary.BigEndian.PutUint64(n[:8], hi)
	binary.BigEndian.PutUint64(n[8:], lo)
	return n, nil
}

// String returns the nonce in decimal, as on the wire.
func (n Nonce) String() string { return string(n.appendDecimal(nil)) }

func (n Nonce) appendDecimal(dst []byte) []byte {
	const e19 = 10_000_000_000_000_000_000
	hi, lo := binary.BigEndian.Uint64(n[:8]), binary.BigEndian.Uint64(n[8:])
	// Peel off 19 decimal digits at a time while the value needs more than 64 bits; at most
	// two rounds, since 2^128 < 10^39.
	var groups [2]uint64
	k := 0
	for hi != 0 {
		q, r := bits.Div64(hi%e19, lo, e19)
		hi, lo = hi/e19, q
		groups[k] = r
		k++
	}
	dst = strconv.AppendUint(dst, lo, 10)
	for k > 0 {
		k--
		var buf [19]byte
		r := groups[k]
		for i := len(buf) - 1; i >= 0; i-- {
			buf[i] = byte('0' + r%10)
			r /= 10
		}
		dst = append(dst, buf[:]...)
	}
	return dst
}

// Attestation is an ExecutionAttestation. Fixed-size fields hold their decoded bytes, so a
// value that exists is well-formed apart from its strings and status, which Marshal checks.
type Attestation struct {
	PacketID    string
	Status      Status
	OutcomeHash [32]byte
	Nonce       Nonce
	TimestampMS int64 // milliseconds since the Unix epoch, ≥ 0
	SignedBy    string
	// Fingerprint is sha256 of the signer's raw 32-byte public key (agent_pubkey_fingerprint).
	Fingerprint [32]byte
	Signature   [64]byte
	// ReasonHash is the hash of the optional reason object; nil when the attestation has none.
	ReasonHash *[32]byte
}

// Time returns the attestation timestamp.
func (a *Attestation) Time() time.Time { return time.UnixMilli(a.TimestampMS) }

// framePrefix is the domain separator and version byte of the reference (V3, version 1).
const framePrefix = "TRUSTHANDOFF_EXEC_ATTEST_V3\x00\x01"

// FramedBytes returns the exact bytes the signature covers.
func (a *Attestation) FramedBytes() []byte {
	return a.AppendFramed(make([]byte, 0, a.framedLen()))
}

func (a *Attestation) framedLen() int {
	n := len(framePrefix) + 6*4 + len(a.PacketID) + 32 + len(a.Status) + 16 + 8 + 32
	if a.ReasonHash != nil {
		n += 4 + 32
	}
	return n
}

// AppendFramed appends the signed bytes to dst (FramedBytes without the allocation).
func (a *Attestation) AppendFramed(dst []byte) []byte {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(a.TimestampMS))
	dst = append(dst, framePrefix...)
	dst = appendField(dst, a.PacketID)
	dst = appendField(dst, a.OutcomeHash[:])
	dst = appendField(dst, a.Status)
	dst = appendField(dst, a.Nonce[:])
	dst = appendField(dst, ts[:])
	dst = appendField(dst, a.Fingerprint[:])
	if a.ReasonHash != nil {
		dst = appendField(dst, a.ReasonHash[:])
	}
	return dst
}

func appendField[S ~string | ~[]byte](dst []byte, field S) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(field)))
	return append(dst, field...)
}

// MaxSize bounds the wire JSON Parse accepts. A well-formed attestation is a few hundred
// bytes plus its packet id; the bound keeps hostile input cheap to reject.
const MaxSize = 64 << 10

func malformed(format string, args ...any) error {
	return reason.New(reason.MalformedEnvelope, fmt.Sprintf(format, args...))
}

// malformedField gives a failed typed field read (a *canonical.FieldError, which names the
// field) the code malformed_envelope. Errors that already carry a code pass through.
func malformedField(err error) error {
	if fe, ok := err.(*canonical.FieldError); ok {
		return reason.Wrap(reason.MalformedEnvelope, "invalid field", fe)
	}
	return err
}

// Parse strictly decodes the wire JSON of an attestation. Every failure is a *reason.Error
// with code malformed_envelope.
func Parse(data []byte) (*Attestation, error) {
	// Depth 2 is the flat object plus one level, so that a nested value in a field is
	// reported as a wrong type rather than as a depth error.
	v, err := canonical.Parse(data, canonical.Limits{MaxBytes: MaxSize, MaxDepth: 2})
	if err != nil {
		return nil, reason.Wrap(reason.MalformedEnvelope, "attestation is not valid JSON", err)
	}
	return FromValue(&v)
}

// field presence bits.
const (
	hasPacketID = 1 << iota
	hasStatus
	hasOutcome
	hasNonce
	hasTimestamp
	hasSignedBy
	hasFingerprint
	hasSignature
	hasReason
	required = hasReason - 1
)

var fieldNames = [...]string{"packet_id", "status", "outcome_hash", "nonce", "timestamp_ms",
	"signed_by", "agent_pubkey_fingerprint", "signature", "reason_hash"}

// FromValue decodes an already parsed attestation (one embedded in a larger document).
// reason_hash may be absent or null; every other field is required.
func FromValue(v *canonical.Value) (*Attestation, error) {
	if v.Kind != canonical.Object {
		return nil, malformed("attestation must be a JSON object, not %s", v.Kind)
	}
	a := &Attestation{}
	var seen int
	for i := range v.Obj {
		m := &v.Obj[i]
		var bit int
		var err error
		switch m.Key {
		case "packet_id":
			bit = hasPacketID
			a.PacketID, err = text(&m.Value, m.Key)
		case "status":
			bit = hasStatus
			var s string
			if s, err = m.Value.AsString(m.Key); err == nil {
				a.Status = Status(s)
				if !a.Status.Valid() {
					err = malformed("status %q is not one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT", truncate(s))
				}
			}
		case "outcome_hash":
			bit = hasOutcome
			err = hash32(&a.OutcomeHash, &m.Value, m.Key)
		case "nonce":
			bit = hasNonce
			if m.Value.Kind != canonical.Int {
				err = malformed("nonce must be an integer, not %s", m.Value.Kind)
			} else if a.Nonce, err = ParseNonce(m.Value.Str); err != nil {
				err = malformed("%v", err)
			}
		case "timestamp_ms":
			bit = hasTimestamp
			a.TimestampMS, err = m.Value.AsInt64(m.Key)
			if err == nil && a.TimestampMS < 0 {
				err = malformed("timestamp_ms %d is out of range [0, 2^63)", a.TimestampMS)
			}
		case "signed_by":
			bit = hasSignedBy
			a.SignedBy, err = text(&m.Value, m.Key)
		case "agent_pubkey_fingerprint":
			bit = hasFingerprint
			err = hash32(&a.Fingerprint, &m.Value, m.Key)
		case "signature":
			bit = hasSignature
			var s string
			if s, err = m.Value.AsString(m.Key); err == nil {
				a.Signature, err = decodeSignature(s)
			}
		case "reason_hash":
			bit = hasReason
			if m.Value.Kind != canonical.Null {
				a.ReasonHash = new([32]byte)
				err = hash32(a.ReasonHash, &m.Value, m.Key)
			}
		default:
			return nil, malformed("unknown attestation field %q", truncate(m.Key))
		}
		if err != nil {
			return nil, malformedField(err)
		}
		// canonical.Parse already rejects duplicate keys; this keeps FromValue safe on a
		// Value built by hand.
		if seen&bit != 0 {
			return nil, malformed("duplicate attestation field %q", m.Key)
		}
		seen |= bit
	}
	if missing := required &^ seen; missing != 0 {
		return nil, malformed("attestation has no %s", fieldNames[bits.TrailingZeros(uint(missing))])
	}
	return a, nil
}

// text reads a free-text field (packet_id, signed_by): a non-empty string of valid UTF-8.
// canonical.Parse guarantees UTF-8; a hand-built Value may not. The other string fields
// are checked against an ASCII pattern, which invalid UTF-8 cannot match.
func text(v *canonical.Value, name string) (string, error) {
	s, err := v.AsID(name)
	if err == nil && !utf8.ValidString(s) {
		return "", malformed("%s is not valid UTF-8", name)
	}
	return s, err
}

// hash32 decodes a lowercase hex SHA-256 (the reference's pattern ^[0-9a-f]{64}$).
func hash32(dst *[32]byte, v *canonical.Value, name string) error {
	s, err := v.AsString(name)
	if err != nil {
		return err
	}
	if len(s) != 64 {
		return malformed("%s must be 64 lowercase hex characters, got %d characters", name, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return malformed("%s must be 64 lowercase hex characters", name)
		}
	}
	_, _ = hex.Decode(dst[:], []byte(s)) // cannot fail: checked above
	return nil
}

// sigLen is the length of a 64-byte value in unpadded base64url.
const sigLen = 86

// decodeSignature decodes canonical unpadded base64url of exactly 64 bytes.
func decodeSignature(s string) ([64]byte, error) {
	var sig [64]byte
	if len(s) != sigLen {
		return sig, malformed("signature must be the unpadded base64url of 64 bytes (86 characters), got %d characters", len(s))
	}
	// Strict rejects non-zero trailing bits, so each signature has exactly one spelling.
	n, err := base64.RawURLEncoding.Strict().Decode(sig[:], []byte(s))
	if err != nil || n != len(sig) {
		return sig, malformed("signature is not canonical unpadded base64url of 64 bytes")
	}
	return sig, nil
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

// Marshal returns the wire JSON of a: the reference's field order, compact separators,
// raw UTF-8 (pydantic's model_dump_json), reason_hash null when absent.
func (a *Attestation) Marshal() ([]byte, error) { return a.AppendJSON(make([]byte, 0, 512)) }

// MarshalJSON implements json.Marshaler with Marshal.
func (a *Attestation) MarshalJSON() ([]byte, error) { return a.Marshal() }

// UnmarshalJSON implements json.Unmarshaler with the strict rules of Parse.
func (a *Attestation) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*a = *p
	return nil
}

// AppendJSON appends the wire JSON of a to dst.
func (a *Attestation) AppendJSON(dst []byte) ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	dst = append(dst, `{"packet_id":`...)
	dst = canonical.AppendString(dst, a.PacketID, false)
	dst = append(dst, `,"status":"`...)
	dst = append(dst, a.Status...)
	dst = append(dst, `","outcome_hash":"`...)
	dst = hex.AppendEncode(dst, a.OutcomeHash[:])
	dst = append(dst, `","nonce":`...)
	dst = a.Nonce.appendDecimal(dst)
	dst = append(dst, `,"timestamp_ms":`...)
	dst = strconv.AppendInt(dst, a.TimestampMS, 10)
	dst = append(dst, `,"signed_by":`...)
	dst = canonical.AppendString(dst, a.SignedBy, false)
	dst = append(dst, `,"agent_pubkey_fingerprint":"`...)
	dst = hex.AppendEncode(dst, a.Fingerprint[:])
	dst = append(dst, `","signature":"`...)
	dst = base64.RawURLEncoding.AppendEncode(dst, a.Signature[:])
	dst = append(dst, `","reason_hash":`...)
	if a.ReasonHash == nil {
		dst = append(dst, "null}"...)
	} else {
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, a.ReasonHash[:])
		dst = append(dst, `"}`...)
	}
	return dst, nil
}

// check enforces on a hand-built value what Parse enforces on the wire, so that everything
// Marshal emits parses back.
func (a *Attestation) check() error {
	switch {
	case a.PacketID == "":
		return malformed("packet_id must not be empty")
	case !utf8.ValidString(a.PacketID):
		return malformed("packet_id is not valid UTF-8")
	case !a.Status.Valid():
		return malformed("status %q is not one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT", truncate(string(a.Status)))
	case a.TimestampMS < 0:
		return malformed("timestamp_ms must not be negative")
	case a.SignedBy == "":
		return malformed("signed_by must not be empty")
	case !utf8.ValidString(a.SignedBy):
		return malformed("signed_by is not valid UTF-8")
	}
	return nil
}
