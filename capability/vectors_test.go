package capability

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

type capVector struct {
	name              string
	VectorID          string            `json:"vector_id"`
	Description       string            `json:"description"`
	Tokens            []string          `json:"tokens"`
	TokenJSON         []string          `json:"token_json"`
	SigningPayloadB64 []string          `json:"signing_payloads_b64"`
	SigningPayloadU8  []string          `json:"signing_payloads_utf8"`
	Registry          map[string]string `json:"registry"`
	Keys              map[string]struct {
		PrivateKeyPEM string `json:"private_key_pem"`
	} `json:"keys"`
	Expected struct {
		WithRegistry bool   `json:"verify_capability_chain_with_registry"`
		PerSignature []bool `json:"per_capability_signature_valid"`
	} `json:"expected"`
}

func loadVectors(tb testing.TB) []capVector {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "vectors", "capabilities", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no capability vectors in testdata/vectors/capabilities (err %v)", err)
	}
	sort.Strings(files)
	var out []capVector
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var v capVector
		if err := json.Unmarshal(raw, &v); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if len(v.Tokens) == 0 || len(v.Tokens) != len(v.TokenJSON) || len(v.Tokens) != len(v.SigningPayloadU8) ||
			len(v.Tokens) != len(v.Expected.PerSignature) || len(v.Registry) == 0 {
			tb.Fatalf("%s: incomplete vector", f)
		}
		v.name = filepath.Base(f)
		out = append(out, v)
	}
	return out
}

// vectorNow is one second after the latest issued_at of the links with a well-formed time
// window; it must lie before every such link's expiry.
func vectorNow(tb testing.TB, chain []*Capability) time.Time {
	tb.Helper()
	var latest, earliestExpiry int64 = -1 << 62, 1 << 62
	for _, c := range chain {
		if c.ExpiresAt.Micros <= c.IssuedAt.Micros {
			continue
		}
		latest = max(latest, c.IssuedAt.Micros)
		earliestExpiry = min(earliestExpiry, c.ExpiresAt.Micros)
	}
	now := latest + 1e6
	if now >= earliestExpiry {
		tb.Fatalf("no instant lies inside every capability's validity window")
	}
	return time.UnixMicro(now).UTC()
}

// wantCode is the reason each invalid vector must fail with.
var wantCode = map[string]reason.Code{
	"chain_bad_signature_invalid.json":                 reason.CapabilityInvalid,
	"chain_derive_capability_token_reference_bug.json": reason.CapabilityInvalid,
	"chain_escalation_invalid.json":                    reason.CapabilityEscalation,
	"chain_wrong_issuer_invalid.json":                  reason.CapabilityInvalid,
}

func TestReferenceVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			chain, err := DecodeChain(v.Tokens, Limits{})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for i, c := range chain {
				if got := c.Token(); got != v.Tokens[i] {
					t.Errorf("link %d: Token() differs:\n got %s\nwant %s", i, got, v.Tokens[i])
				}
				if got := string(c.JSON()); got != v.TokenJSON[i] {
					t.Errorf("link %d: token JSON differs:\n got %s\nwant %s", i, got, v.TokenJSON[i])
				}
				if got := string(c.SigningBytes()); got != v.SigningPayloadU8[i] {
					t.Errorf("link %d: signing bytes differ:\n got %s\nwant %s", i, got, v.SigningPayloadU8[i])
				}
				if want, err := base64.StdEncoding.DecodeString(v.SigningPayloadB64[i]); err != nil || string(want) != string(c.SigningBytes()) {
					t.Errorf("link %d: signing bytes differ from signing_payloads_b64 (%v)", i, err)
				}
				if got := c.VerifySignature(); got != v.Expected.PerSignature[i] {
					t.Errorf("link %d: VerifySignature() = %v, want %v", i, got, v.Expected.PerSignature[i])
				}
			}
			reg, err := NewStaticRegistry(v.Registry)
			if err != nil {
				t.Fatal(err)
			}
			now := vectorNow(t, chain)
			err = VerifyChain(chain, reg, now)
			if (err == nil) != v.Expected.WithRegistry {
				t.Fatalf("VerifyChain at %s = %v, want ok=%v", now, err, v.Expected.WithRegistry)
			}
			if v.Expected.WithRegistry {
				// The same chain once its earliest link has expired.
				end := chain[0].ExpiresAt.Micros
				for _, c := range chain {
					end = min(end, c.ExpiresAt.Micros)
				}
				if got := codeOf(VerifyChain(chain, reg, time.UnixMicro(end))); got != reason.CapabilityExpired {
					t.Errorf("VerifyChain at %s = %s, want %s", time.UnixMicro(end).UTC(), got, reason.CapabilityExpired)
				}
			}
			if err != nil {
				if got, want := reason.Of(err, ""), wantCode[v.name]; got != want {
					t.Errorf("VerifyChain code = %s, want %s (%v)", got, want, err)
				}
				t.Logf("rejected as expected: %v", err)
			}
		})
	}
}

// TestReferenceVectorsReissue rebuilds every valid chain with Issue and Derive from the
// vectors' keys: Ed25519 is deterministic, so the tokens must come out identical.
func TestReferenceVectorsReissue(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t) {
		if !v.Expected.WithRegistry {
			continue
		}
		n++
		t.Run(v.name, func(t *testing.T) {
			chain, err := DecodeChain(v.Tokens, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var parent *Capability
			for i, c := range chain {
				k, ok := v.Keys[c.IssuerAgent]
				if !ok {
					t.Fatalf("link %d: no key for %s", i, c.IssuerAgent)
				}
				priv, err := identity.ParsePrivateKeyPEM([]byte(k.PrivateKeyPEM))
				if err != nil {
					t.Fatal(err)
				}
				signer := identity.NewKeySigner(priv)
				var got *Capability
				if parent == nil {
					got, err = Issue(signer, c.SubjectAgent, c.Permissions, c.Constraints, c.IssuedAt.Time(), c.ExpiresAt.Time(), WithID(c.CapabilityID))
				} else {
					got, err = Derive(parent, signer, c.SubjectAgent, c.Permissions, c.Constraints, c.IssuedAt.Time(), c.ExpiresAt.Time(), WithID(c.CapabilityID))
				}
				if err != nil {
					t.Fatalf("link %d: %v", i, err)
				}
				if got.Token() != v.Tokens[i] {
					t.Errorf("link %d: reissued token differs:\n got %s\nwant %s", i, got.Token(), v.Tokens[i])
				}
				parent = got
			}
		})
	}
	if n == 0 {
		t.Fatal("no valid capability vectors")
	}
}
