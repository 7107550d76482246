package attest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// vector is one file of testdata/vectors/attestations, produced by the Python reference.
type vector struct {
	ID     string `json:"vector_id"`
	Signer struct {
		AgentID       string `json:"agent_id"`
		PublicKeyPEM  string `json:"public_key_pem"`
		PrivateKeyPEM string `json:"private_key_pem"`
		SeedHex       string `json:"ed25519_seed_hex"`
		PublicRawHex  string `json:"ed25519_public_raw_hex"`
	} `json:"signer"`
	AttestationJSON string          `json:"attestation_json"`
	Result          json.RawMessage `json:"result"`
	Reason          json.RawMessage `json:"reason"`
	ResultCanonB64  *string         `json:"result_canonical_json_b64"`
	ReasonCanonB64  *string         `json:"reason_canonical_json_b64"`
	FramedHex       string          `json:"framed_payload_hex"`
	FramedB64       string          `json:"framed_payload_b64"`
	Expected        struct {
		VerifyAttestation bool  `json:"verify_attestation"`
		NowMS             int64 `json:"now_ms"`
		MaxAgeSeconds     int64 `json:"max_age_seconds"`
	} `json:"expected"`
}

func (v *vector) now() time.Time { return time.UnixMilli(v.Expected.NowMS) }

func (v *vector) maxAge() time.Duration { return time.Duration(v.Expected.MaxAgeSeconds) * time.Second }

func (v *vector) pub(t testing.TB) ed25519.PublicKey {
	t.Helper()
	pub, err := identity.ParsePublicKeyPEM(v.Signer.PublicKeyPEM)
	if err != nil {
		t.Fatalf("%s: public key: %v", v.ID, err)
	}
	return pub
}

func (v *vector) key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	key, err := identity.ParsePrivateKeyPEM([]byte(v.Signer.PrivateKeyPEM))
	if err != nil {
		t.Fatalf("%s: private key: %v", v.ID, err)
	}
	return key
}

// value parses a JSON member of the vector file with the strict parser; JSON null (or an
// absent member) gives nil.
func value(t testing.TB, raw json.RawMessage) *canonical.Value {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	v, err := canonical.Parse(raw, canonical.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return &v
}

func loadVectors(t testing.TB) []*vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", "attestations", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []*vector
	for _, f := range files {
		if filepath.Base(f) == "manifest.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v := new(vector)
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.ID == "" || v.AttestationJSON == "" || v.Expected.NowMS == 0 {
			t.Fatalf("%s: not an attestation vector", f)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		t.Fatal("no attestation vectors found under testdata/vectors/attestations: the test would prove nothing")
	}
	return vs
}

func TestReferenceVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			a, err := Parse([]byte(v.AttestationJSON))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}

			// Wire form: Marshal reproduces the reference's bytes exactly.
			out, err := a.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(out) != v.AttestationJSON {
				t.Errorf("Marshal:\n got %s\nwant %s", out, v.AttestationJSON)
			}

			// Signed bytes: the framing is byte-exact.
			want, err := hex.DecodeString(v.FramedHex)
			if err != nil {
				t.Fatal(err)
			}
			if b64, _ := base64.StdEncoding.DecodeString(v.FramedB64); !bytes.Equal(b64, want) {
				t.Fatal("vector's framed_payload_b64 and _hex disagree")
			}
			if got := a.FramedBytes(); !bytes.Equal(got, want) {
				t.Errorf("FramedBytes:\n got %x\nwant %x", got, want)
			}

			// Outcome and reason hashes: canonical bytes and digests.
			result, why := value(t, v.Result), value(t, v.Reason)
			checkCanonical(t, "result", result, v.ResultCanonB64, &a.OutcomeHash)
			checkCanonical(t, "reason", why, v.ReasonCanonB64, a.ReasonHash)

			// Identity: agent id and fingerprint of the vector's key.
			pub := v.pub(t)
			if got := identity.AgentIDOf(pub); got != v.Signer.AgentID {
				t.Errorf("AgentIDOf = %s, want %s", got, v.Signer.AgentID)
			}
			if raw, _ := hex.DecodeString(v.Signer.PublicRawHex); !bytes.Equal(pub, raw) {
				t.Errorf("public key = %x, want %s", []byte(pub), v.Signer.PublicRawHex)
			}

			// The decision agrees with the reference at its clock, with and without the
			// result (the reference always checks it; this package makes it optional).
			opts := []Option{WithMaxAge(v.maxAge())}
			withOutcome := append(opts, WithOutcome(*result, why))
			for name, o := range map[string][]Option{"signature only": opts, "with outcome": withOutcome} {
				err := Verify(a, pub, v.now(), o...)
				if got := err == nil; got != v.Expected.VerifyAttestation {
					t.Errorf("Verify (%s) = %v, reference says valid=%v", name, err, v.Expected.VerifyAttestation)
				}
				if err != nil && !errors.Is(err, ErrSignature) {
					t.Errorf("Verify (%s) = %v, want ErrSignature", name, err)
				}
				if err != nil && reason.Of(err, "") != reason.InvalidSignature {
					t.Errorf("Verify (%s) code = %s, want invalid_signature", name, reason.Of(err, ""))
				}
			}

			// Ed25519 is deterministic: re-signing the framed bytes with the vector's private
			// key gives the reference's signature for every genuine vector.
			if v.Expected.VerifyAttestation {
				sig := ed25519.Sign(v.key(t), a.FramedBytes())
				if !bytes.Equal(sig, a.Signature[:]) {
					t.Errorf("re-signed signature differs from the reference's")
				}
			}
		})
	}
}

func checkCanonical(t *testing.T, name string, v *canonical.Value, wantB64 *string, wantHash *[32]byte) {
	t.Helper()
	if v == nil {
		if wantB64 != nil || wantHash != nil {
			t.Errorf("%s: vector has no %s but a canonical form or hash", name, name)
		}
		return
	}
	if wantB64 == nil || wantHash == nil {
		t.Fatalf("%s: vector has a %s but no canonical form or hash", name, name)
	}
	got, err := canonical.Marshal(v, canonical.OutcomeHash())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	want, err := base64.StdEncoding.DecodeString(*wantB64)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s canonical JSON:\n got %s\nwant %s", name, got, want)
	}
	h, err := OutcomeHash(*v)
	if err != nil {
		t.Fatalf("OutcomeHash(%s): %v", name, err)
	}
	if h != *wantHash {
		t.Errorf("OutcomeHash(%s) = %x, attestation says %x", name, h, *wantHash)
	}
}
