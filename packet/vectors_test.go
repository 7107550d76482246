package packet

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

type packetVector struct {
	VectorID         string `json:"vector_id"`
	WireEnvelopeJSON string `json:"wire_envelope_json"`
	WirePacketJSON   string `json:"wire_packet_json"`
	SignedPayloadB64 string `json:"signed_payload_b64"`
	VerifierPayload  string `json:"verifier_payload_b64"`
	Signer           struct {
		AgentID      string `json:"agent_id"`
		PublicKeyPEM string `json:"public_key_pem"`
	} `json:"signer"`
	Expected struct {
		VerifyPacket bool                      `json:"verify_packet"`
		ReferenceNow string                    `json:"reference_now"`
		Middleware   struct{ Decision string } `json:"middleware_decision_at_reference_now"`
	} `json:"expected"`
}

func loadPacketVectors(t testing.TB, dir string) map[string]packetVector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no packet vectors in testdata/vectors/%s (err %v)", dir, err)
	}
	out := map[string]packetVector{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v packetVector
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		rule Rule
	}{{"packets_v0.4.0", Rule04}, {"packets_v0.3.3", Rule033}} {
		for name, v := range loadPacketVectors(t, tc.dir) {
			t.Run(tc.dir+"/"+name, func(t *testing.T) {
				env, err := ParseEnvelope([]byte(v.WireEnvelopeJSON), Limits{})
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				p := env.Packet
				// The wire spelling round-trips byte for byte.
				wire, err := env.MarshalJSON()
				if err != nil || string(wire) != v.WireEnvelopeJSON {
					t.Errorf("envelope wire JSON differs:\n got %s\nwant %s", wire, v.WireEnvelopeJSON)
				}
				pw, _ := p.AppendJSON(nil)
				if string(pw) != v.WirePacketJSON {
					t.Errorf("packet wire JSON differs")
				}
				// Our canonical bytes are what the reference verifier rebuilds.
				got, err := p.SigningBytes(nil, tc.rule)
				if err != nil {
					t.Fatal(err)
				}
				if want := b64(t, v.VerifierPayload); !bytes.Equal(got, want) {
					t.Errorf("canonical bytes differ:\n got %s\nwant %s", got, want)
				}
				if strings.HasPrefix(name, "valid_") {
					if want := b64(t, v.SignedPayloadB64); !bytes.Equal(got, want) {
						t.Errorf("signed payload differs:\n got %s\nwant %s", got, want)
					}
				}
				pub, err := identity.ParsePublicKeyPEM(p.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				rule, err := p.VerifySignature(pub)
				if ok := err == nil; ok != v.Expected.VerifyPacket {
					t.Fatalf("verify = %v (%v), want %v", ok, err, v.Expected.VerifyPacket)
				}
				if err == nil && rule != tc.rule {
					t.Errorf("verified under rule %s, want %s", rule, tc.rule)
				}
				if v.Expected.VerifyPacket {
					if identity.AgentID(p.PublicKey) != p.FromAgent || p.FromAgent != v.Signer.AgentID {
						t.Errorf("agent id mismatch")
					}
					now, err := time.Parse(time.RFC3339Nano, v.Expected.ReferenceNow)
					if err != nil {
						t.Fatal(err)
					}
					if err := ValidateTime(p, now, &TimePolicy{Skew: DefaultSkew}); err != nil {
						t.Errorf("time validation at reference_now: %v", err)
					}
					if err := ValidateAIProvenance(p); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
}
