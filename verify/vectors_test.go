package verify

import (
	"context"
	"encoding/json"
	"github.com/trusthandoff/trusthandoff-go/approval"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
)

// referenceVector is the part of a packet vector of the Python reference that the whole
// pipeline needs: the envelope as the reference put it on the wire, the signer's key, the
// instant the reference judged it at and the reference middleware's decision then.
type referenceVector struct {
	WireEnvelopeJSON string `json:"wire_envelope_json"`
	Signer           struct {
		PublicKeyPEM string `json:"public_key_pem"`
	} `json:"signer"`
	Expected struct {
		ReferenceNow string `json:"reference_now"`
		Middleware   struct {
			Decision string `json:"decision"`
			Reason   string `json:"reason"`
		} `json:"middleware_decision_at_reference_now"`
	} `json:"expected"`
}

// divergences lists every vector on which this pipeline decides otherwise than the
// reference middleware, with the code it rejects with and why (spec/protocol.md,
// "Reference vectors through the whole pipeline"). Keys are "<folder>/<file>".
var divergences = map[string]struct {
	want reason.Code
	why  string
}{
	// The packet names a capability_token (a root grant of "read", "search", "summarize",
	// at most 10 tool calls) and asks for "read_tickets", "search_kb", "draft_reply" with no
	// tool-call limit. The reference middleware never looks at the token; this pipeline
	// requires the packet's permissions to lie inside it.
	"packets_v0.3.3/valid_09_all_fields.json": {reason.ActionNotAuthorized, "capability_token checked"},
	"packets_v0.4.0/valid_09_all_fields.json": {reason.ActionNotAuthorized, "capability_token checked"},
	// The swapped public_key is not the registered key of from_agent: identity binding
	// (step 2) rejects before the signature (step 3) is looked at.
	"packets_v0.3.3/tampered_05_public_key_swapped.json": {reason.PublicKeyMismatch, "identity binding before signature"},
	"packets_v0.4.0/tampered_05_public_key_swapped.json": {reason.PublicKeyMismatch, "identity binding before signature"},
}

// referenceReasons maps the reference middleware's reasons to this project's codes.
var referenceReasons = map[string]reason.Code{
	"Packet verified and valid": reason.OK,
	"Invalid signature":         reason.InvalidSignature,
}

// TestReferenceVectorsWholePipeline runs every packet vector's wire envelope, byte for
// byte as the reference wrote it, through the whole pipeline (registry holding the vector's
// signer, memory replay store, clock at the vector's reference time) and requires the
// reference middleware's decision, except for the divergences listed above.
func TestReferenceVectorsWholePipeline(t *testing.T) {
	seen := map[string]bool{}
	for _, folder := range []struct {
		dir  string
		rule packet.Rule // the rule the reference signed with
	}{{"packets_v0.3.3", packet.Rule033}, {"packets_v0.4.0", packet.Rule04}} {
		dir := folder.dir
		files, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no packet vectors in testdata/vectors/%s (err %v)", dir, err)
		}
		for _, f := range files {
			for _, precomputed := range []bool{false, true} {
				name := dir + "/" + filepath.Base(f)
				label := name + "/stdlib"
				if precomputed {
					label = name + "/precomputed"
				}
				t.Run(label, func(t *testing.T) {
					vec := loadReferenceVector(t, f)
					now, err := time.Parse(time.RFC3339Nano, vec.Expected.ReferenceNow)
					if err != nil {
						t.Fatal(err)
					}
					pub, err := identity.ParsePublicKeyPEM(vec.Signer.PublicKeyPEM)
					if err != nil {
						t.Fatal(err)
					}
					reg := registry.New()
					if _, err := reg.Add("", pub, nil, nil); err != nil {
						t.Fatal(err)
					}
					if precomputed { // the same decisions with the keys precomputed
						if err := reg.SetVerifierFactory(fastverify.New); err != nil {
							t.Fatal(err)
						}
					}
					clock := func() time.Time { return now }
					opts := []Option{WithClock(clock)}
					if precomputed { // and the digests hashed from the verified bytes
						opts = append(opts, WithPacketDigests())
					}
					v, err := New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), opts...)
					if err != nil {
						t.Fatal(err)
					}
					wire := []byte(vec.WireEnvelopeJSON)
					d := v.Verify(context.Background(), wire)

					ref := vec.Expected.Middleware
					want, known := referenceReasons[ref.Reason]
					if !known {
						t.Fatalf("reference reason %q has no mapping", ref.Reason)
					}
					if (want == reason.OK) != (ref.Decision == Accept) {
						t.Fatalf("reference decision %s with reason %q", ref.Decision, ref.Reason)
					}
					if div, ok := divergences[name]; ok {
						seen[name] = true
						if d.Reason != div.want {
							t.Fatalf("got %s (%s), want the documented divergence %s (%s)", d.Reason, d.Detail, div.want, div.why)
						}
						return
					}
					if d.Reason != want {
						t.Fatalf("got %s %s (%s), the reference decided %s (%q)", d.Decision, d.Reason, d.Detail, ref.Decision, ref.Reason)
					}
					if !d.Accepted() {
						return
					}
					if d.Rule != folder.rule {
						t.Errorf("verified under rule %s, want %s", d.Rule, folder.rule)
					}
					dg, err := approval.Digest(d.Envelope.Packet, d.Rule)
					if err != nil {
						t.Fatal(err)
					}
					if precomputed && d.Digest != dg || !precomputed && d.Digest != ([32]byte{}) && d.Digest != dg {
						t.Errorf("Digest %x, want %x (WithPacketDigests %v)", d.Digest, dg, precomputed)
					}
					// The same bytes again are a replay: the accepted packet spent its nonce.
					if d2 := v.Verify(context.Background(), wire); d2.Reason != reason.ReplayDetected {
						t.Errorf("second delivery: got %s, want replay_detected", d2.Reason)
					}
				})
			}
		}
	}
	for name := range divergences {
		if !seen[name] {
			t.Errorf("divergence %s names no vector that was run", name)
		}
	}
}

// capabilityVector is the part of a reference capability vector that a handoff needs: the
// chain's tokens as the reference wrote them, every agent's key and the registry.
type capabilityVector struct {
	Tokens   []string          `json:"tokens"`
	Registry map[string]string `json:"registry"`
	Keys     map[string]struct {
		PrivateKeyPEM string `json:"private_key_pem"`
	} `json:"keys"`
	Expected struct {
		WithRegistry bool `json:"verify_capability_chain_with_registry"`
	} `json:"expected"`
}

// capabilityRejects is the code each chain the reference rejects (with its registry) is
// rejected with here.
var capabilityRejects = map[string]reason.Code{
	"chain_bad_signature_invalid.json":                 reason.CapabilityInvalid,
	"chain_derive_capability_token_reference_bug.json": reason.CapabilityInvalid,
	"chain_escalation_invalid.json":                    reason.CapabilityEscalation,
	"chain_wrong_issuer_invalid.json":                  reason.CapabilityInvalid,
}

// TestReferenceCapabilityChainsWholePipeline: the capability vectors carry no envelope, so
// each chain, token for token as the reference wrote it, rides in a handoff signed by the
// leaf's issuer for the leaf's subject, asking for exactly the leaf's permissions under the
// constraints the chain imposes. The pipeline (registry from the vector, clock one second after the latest
// link was issued) accepts it exactly when the reference's verify_capability_chain with
// that registry does, and rejects the others with the chain's code.
func TestReferenceCapabilityChainsWholePipeline(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", "capabilities", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no capability vectors in testdata/vectors/capabilities (err %v)", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var vec capabilityVector
			if err := json.Unmarshal(raw, &vec); err != nil || len(vec.Tokens) == 0 || len(vec.Registry) == 0 {
				t.Fatalf("not a capability vector (%v)", err)
			}
			chain, err := capability.DecodeChain(vec.Tokens, capability.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			reg := registry.New()
			for id, pemText := range vec.Registry {
				pub, err := identity.ParsePublicKeyPEM(pemText)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := reg.Add(id, pub, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			leaf := chain[len(chain)-1]
			key, ok := vec.Keys[leaf.IssuerAgent]
			if !ok {
				t.Fatalf("no key for the leaf's issuer %s", leaf.IssuerAgent)
			}
			priv, err := identity.ParsePrivateKeyPEM([]byte(key.PrivateKeyPEM))
			if err != nil {
				t.Fatal(err)
			}
			var latest int64
			for _, c := range chain {
				latest = max(latest, c.IssuedAt.Micros)
			}
			now := time.UnixMicro(latest).UTC().Add(time.Second)
			ttl, risk, tok := int64(120), packet.RiskWrite, leaf.Token()
			p := &packet.Packet{
				PacketID: packet.NewID(), TaskID: "task-cap", ToAgent: leaf.SubjectAgent, Nonce: packet.NewID(),
				Intent: "Work within the delegated capability", CapabilityToken: &tok,
				Permissions: packet.Permissions{AllowedActions: leaf.Permissions.AllowedActions, MaxToolCalls: leaf.Permissions.MaxToolCalls},
				IssuedAt:    canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(120 * time.Second)),
				RiskLevel: &risk, TTLSeconds: &ttl,
			}
			if c := capability.EffectiveConstraints(chain); c != nil { // what the chain imposes, inherited
				p.Constraints = &packet.Constraints{MaxRuntimeSeconds: c.MaxRuntimeSeconds, DataBoundary: c.DataBoundary, RequiresHumanReview: c.RequiresHumanReview}
			}
			if err := p.Sign(identity.NewKeySigner(priv), packet.Rule04); err != nil {
				t.Fatal(err)
			}
			env := &packet.Envelope{Packet: p}
			if len(vec.Tokens) > 1 {
				env.Capabilities = vec.Tokens
			}
			wire, err := env.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			clock := func() time.Time { return now }
			v, err := New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), WithClock(clock), WithRequireCapability())
			if err != nil {
				t.Fatal(err)
			}
			d := v.Verify(context.Background(), wire)
			want := reason.OK
			if !vec.Expected.WithRegistry {
				if want = capabilityRejects[name]; want == "" {
					t.Fatalf("the reference rejects this chain; add the code it is rejected with here")
				}
			}
			if d.Reason != want {
				t.Fatalf("got %s (%s), want %s", d.Reason, d.Detail, want)
			}
			if d.Accepted() && len(d.Chain) != len(chain) {
				t.Errorf("verified chain has %d links, want %d", len(d.Chain), len(chain))
			}
		})
	}
}

func loadReferenceVector(t *testing.T, path string) referenceVector {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v referenceVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if v.WireEnvelopeJSON == "" || !strings.HasPrefix(v.Signer.PublicKeyPEM, "-----BEGIN PUBLIC KEY-----") || v.Expected.Middleware.Decision == "" {
		t.Fatalf("%s: not a packet vector with a wire envelope, a signer and a middleware decision", path)
	}
	return v
}
