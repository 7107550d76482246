package capability

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/reason"
)

var now = t0.Add(10 * time.Minute)

// baseChain is alice → bob → carol → dave, narrowing at each step; the last link's
// constraints are null (inherited).
func baseChain(tb testing.TB) []*Capability {
	tb.Helper()
	root := forge(tb, nil, spec{id: "root", by: alice, to: bob, perms: perms(i64(10), "read", "search", "summarize")})
	hop1 := forge(tb, root, spec{id: "hop1", by: bob, to: carol, perms: perms(i64(5), "read", "search"),
		constraints: &Constraints{MaxRuntimeSeconds: i64(120), DataBoundary: sp("eu"), RequiresHumanReview: true}})
	hop2 := forge(tb, hop1, spec{id: "hop2", by: carol, to: dave, perms: perms(i64(1), "read"), expires: t0.Add(30 * time.Minute)})
	return []*Capability{root, hop1, hop2}
}

func allAgents(tb testing.TB) *StaticRegistry { return registryOf(tb, alice, bob, carol, dave, eve) }

// recordingRegistry records the instants it is asked about.
type recordingRegistry struct {
	Registry
	at []time.Time
}

func (r *recordingRegistry) KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool {
	r.at = append(r.at, at)
	return r.Registry.KeyValid(agentID, pub, at)
}

func TestVerifyChain(t *testing.T) {
	hop1Constraints := func(edit func(*Constraints)) *Constraints {
		c := &Constraints{MaxRuntimeSeconds: i64(120), DataBoundary: sp("eu"), RequiresHumanReview: true}
		if edit != nil {
			edit(c)
		}
		return c
	}
	// child builds a link carol → dave under the base hop1 with the given permissions and
	// constraints, correctly signed by carol.
	child := func(p Permissions, c *Constraints) func(tb testing.TB) []*Capability {
		return func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			return []*Capability{b[0], b[1], forge(tb, b[1], spec{id: "hop2x", by: carol, to: dave, perms: p, constraints: c})}
		}
	}
	tests := []struct {
		name  string
		chain func(tb testing.TB) []*Capability
		reg   Registry // nil: every agent
		now   time.Time
		opts  []VerifyOption
		want  reason.Code
	}{
		{name: "depth 3 valid", chain: baseChain, want: reason.OK},
		{name: "depth 1 valid", chain: func(tb testing.TB) []*Capability { return baseChain(tb)[:1] }, want: reason.OK},
		{name: "depth 2 valid", chain: func(tb testing.TB) []*Capability { return baseChain(tb)[:2] }, want: reason.OK},
		{name: "leaf alone is not a chain", chain: func(tb testing.TB) []*Capability { return baseChain(tb)[2:] }, want: reason.CapabilityInvalid},
		{name: "empty chain", chain: func(testing.TB) []*Capability { return nil }, want: reason.CapabilityInvalid},
		{name: "nil link", chain: func(tb testing.TB) []*Capability { b := baseChain(tb); b[1] = nil; return b }, want: reason.CapabilityInvalid},
		{name: "links out of order", chain: func(tb testing.TB) []*Capability { b := baseChain(tb); b[1], b[2] = b[2], b[1]; return b }, want: reason.CapabilityInvalid},

		// Broken links: capability_invalid.
		{name: "root names a parent", chain: func(tb testing.TB) []*Capability {
			return []*Capability{forge(tb, baseChain(tb)[0], spec{id: "r2", by: alice, to: bob, perms: perms(nil, "read")})}
		}, want: reason.CapabilityInvalid},
		{name: "wrong parent id", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.ParentCapabilityID = sp("root")
			return []*Capability{b[0], b[1], resign(tb, c, carol)}
		}, want: reason.CapabilityInvalid},
		{name: "child without parent id", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.ParentCapabilityID = nil
			return []*Capability{b[0], b[1], resign(tb, c, carol)}
		}, want: reason.CapabilityInvalid},
		{name: "issuer is not the parent's subject", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			return []*Capability{b[0], forge(tb, b[0], spec{id: "e1", by: eve, to: carol, perms: perms(i64(1), "read")})}
		}, want: reason.CapabilityInvalid},
		{name: "repeated capability id", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			return []*Capability{b[0], forge(tb, b[0], spec{id: "root", by: bob, to: carol, perms: perms(i64(1), "read")})}
		}, want: reason.CapabilityInvalid},
		{name: "malformed time window", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.IssuedAt, c.ExpiresAt = c.ExpiresAt, c.IssuedAt
			return []*Capability{b[0], b[1], resign(tb, c, carol)}
		}, want: reason.CapabilityInvalid},
		{name: "empty time window", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.ExpiresAt = c.IssuedAt
			return []*Capability{b[0], b[1], resign(tb, c, carol)}
		}, want: reason.CapabilityInvalid},
		{name: "unsupported algorithm", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.SignatureAlgo = "RSA"
			return []*Capability{b[0], b[1], resign(tb, c, carol)}
		}, want: reason.CapabilityInvalid},

		// Authenticity: capability_invalid.
		{name: "tampered after signing", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.Permissions.MaxToolCalls = i64(0) // narrower, but not what carol signed
			return []*Capability{b[0], b[1], c}
		}, want: reason.CapabilityInvalid},
		{name: "signed by another key than it carries", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.Signature = encodeSig(ed25519.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)), c.SigningBytes()))
			return []*Capability{b[0], b[1], c}
		}, want: reason.CapabilityInvalid},
		{name: "carries the parent's key (reference derive bug)", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			c := clone(b[2])
			c.PublicKey = b[1].PublicKey // bob's key, signed by carol
			sig, _ := carol.signer.Sign(c.SigningBytes())
			c.Signature = encodeSig(sig)
			return []*Capability{b[0], b[1], c}
		}, want: reason.CapabilityInvalid},
		{name: "self-consistent key not registered for issuer", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			// eve signs with her own key but claims to be carol.
			c := forge(tb, b[1], spec{id: "hop2e", by: eve, to: dave, perms: perms(i64(1), "read")})
			c.IssuerAgent = carol.id
			return []*Capability{b[0], b[1], resign(tb, c, eve)}
		}, want: reason.CapabilityInvalid},
		{name: "issuer unknown to registry", chain: baseChain, reg: registryOf(t, alice, bob), want: reason.CapabilityInvalid},
		{name: "issuer registered with another key", chain: baseChain, reg: func() Registry {
			r, err := NewStaticRegistry(map[string]string{alice.id: alice.pem, bob.id: bob.pem, carol.id: eve.pem})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}(), want: reason.CapabilityInvalid},

		// Attenuation: capability_escalation.
		{name: "outlives parent", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			return []*Capability{b[0], b[1], forge(tb, b[1], spec{id: "x", by: carol, to: dave, perms: perms(i64(1), "read"), expires: t0.Add(2 * time.Hour)})}
		}, want: reason.CapabilityEscalation},
		{name: "extra action", chain: child(perms(i64(1), "read", "delete"), nil), want: reason.CapabilityEscalation},
		{name: "max_tool_calls raised", chain: child(perms(i64(6), "read"), nil), want: reason.CapabilityEscalation},
		{name: "max_tool_calls equal", chain: child(perms(i64(5), "read", "search"), nil), want: reason.OK},
		{name: "null max_tool_calls escapes the limit", chain: child(perms(nil, "read"), nil), want: reason.CapabilityEscalation},
		{name: "limit under an unlimited parent", chain: func(tb testing.TB) []*Capability {
			root := forge(tb, nil, spec{id: "r", by: alice, to: bob, perms: perms(nil, "read")})
			return []*Capability{root, forge(tb, root, spec{id: "c", by: bob, to: carol, perms: perms(i64(100), "read")})}
		}, want: reason.OK},
		{name: "null max under an unlimited parent", chain: func(tb testing.TB) []*Capability {
			root := forge(tb, nil, spec{id: "r", by: alice, to: bob, perms: perms(nil, "read")})
			return []*Capability{root, forge(tb, root, spec{id: "c", by: bob, to: carol, perms: perms(nil, "read")})}
		}, want: reason.OK},
		{name: "no actions", chain: child(perms(i64(0)), nil), want: reason.OK},
		{name: "repeated allowed action", chain: child(perms(i64(1), "read", "read"), nil), want: reason.OK},
		{name: "constraints inherited (null)", chain: child(perms(i64(1), "read"), nil), want: reason.OK},
		{name: "constraints repeated", chain: child(perms(i64(1), "read"), hop1Constraints(nil)), want: reason.OK},
		{name: "constraints tightened", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.MaxRuntimeSeconds = i64(60) })), want: reason.OK},
		{name: "max_runtime_seconds raised", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.MaxRuntimeSeconds = i64(121) })), want: reason.CapabilityEscalation},
		{name: "max_runtime_seconds unset", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.MaxRuntimeSeconds = nil })), want: reason.CapabilityEscalation},
		{name: "data_boundary changed", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.DataBoundary = sp("us") })), want: reason.CapabilityEscalation},
		{name: "data_boundary unset", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.DataBoundary = nil })), want: reason.CapabilityEscalation},
		{name: "requires_human_review switched off", chain: child(perms(i64(1), "read"), hop1Constraints(func(c *Constraints) { c.RequiresHumanReview = false })), want: reason.CapabilityEscalation},
		{name: "all constraints dropped by an explicit empty object", chain: child(perms(i64(1), "read"), &Constraints{}), want: reason.CapabilityEscalation},
		{name: "inherited constraint loosened further down", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb) // hop2's constraints are null: hop1's are in force
			loose := &Constraints{MaxRuntimeSeconds: i64(600), DataBoundary: sp("eu"), RequiresHumanReview: true}
			return append(b, forge(tb, b[2], spec{id: "hop3", by: dave, to: eve, perms: perms(i64(1), "read"), constraints: loose, expires: t0.Add(20 * time.Minute)}))
		}, want: reason.CapabilityEscalation},
		{name: "constraints added under an unconstrained parent", chain: func(tb testing.TB) []*Capability {
			b := baseChain(tb)
			return []*Capability{b[0], forge(tb, b[0], spec{id: "c", by: bob, to: carol, perms: perms(i64(1), "read"), constraints: &Constraints{DataBoundary: sp("eu")}})}
		}, want: reason.OK},

		// Liveness: capability_expired.
		{name: "leaf expired", chain: baseChain, now: t0.Add(30 * time.Minute), want: reason.CapabilityExpired},
		{name: "leaf expires a microsecond later", chain: baseChain, now: t0.Add(30*time.Minute - time.Microsecond), want: reason.OK},
		{name: "leaf expires a nanosecond later", chain: baseChain, now: t0.Add(30*time.Minute - time.Nanosecond), want: reason.OK},
		{name: "root expired", chain: baseChain, now: t0.Add(2 * time.Hour), want: reason.CapabilityExpired},
		{name: "issued in the future beyond skew", chain: baseChain, now: t0.Add(-31 * time.Second), want: reason.CapabilityExpired},
		{name: "issued in the future within skew", chain: baseChain, now: t0.Add(-29 * time.Second), want: reason.OK},
		{name: "issued in the future with zero skew", chain: baseChain, now: t0.Add(-time.Second), opts: []VerifyOption{WithSkew(0)}, want: reason.CapabilityExpired},
		{name: "issued in the future with a wide skew", chain: baseChain, now: t0.Add(-time.Minute), opts: []VerifyOption{WithSkew(2 * time.Minute)}, want: reason.OK},
		{name: "negative skew is zero", chain: baseChain, now: t0, opts: []VerifyOption{WithSkew(-time.Hour)}, want: reason.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := tc.reg
			if reg == nil {
				reg = allAgents(t)
			}
			at := tc.now
			if at.IsZero() {
				at = now
			}
			err := VerifyChain(tc.chain(t), reg, at, tc.opts...)
			if got := codeOf(err); got != tc.want {
				t.Fatalf("VerifyChain = %s (%v), want %s", got, err, tc.want)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
	t.Run("nil registry", func(t *testing.T) {
		if got := codeOf(VerifyChain(baseChain(t), nil, now)); got != reason.CapabilityInvalid {
			t.Fatalf("got %s", got)
		}
	})
}

// An escalating link is reported as invalid, not as an escalation, when its signature is
// bad: only authentic data is judged.
func TestVerifyChainSignatureBeforeAttenuation(t *testing.T) {
	b := baseChain(t)
	c := clone(b[2])
	c.Permissions.AllowedActions = []string{"delete"}
	if got := codeOf(VerifyChain([]*Capability{b[0], b[1], c}, allAgents(t), now)); got != reason.CapabilityInvalid {
		t.Fatalf("got %s, want %s", got, reason.CapabilityInvalid)
	}
}

func TestVerifyChainAsksRegistryAtNow(t *testing.T) {
	r := &recordingRegistry{Registry: allAgents(t)}
	if err := VerifyChain(baseChain(t), r, now); err != nil {
		t.Fatal(err)
	}
	if len(r.at) != 3 {
		t.Fatalf("registry asked %d times, want 3", len(r.at))
	}
	for _, at := range r.at {
		if !at.Equal(now) {
			t.Fatalf("registry asked at %s, want %s", at, now)
		}
	}
}

// Verification never writes to the capabilities, so concurrent use is safe (run with -race).
func TestVerifyChainConcurrent(t *testing.T) {
	chain := baseChain(t)
	reg := allAgents(t)
	done := make(chan error)
	for range 8 {
		go func() { done <- VerifyChain(chain, reg, now) }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// Editing the text fields of a decoded capability bypasses the key cache.
func TestKeyCacheFollowsText(t *testing.T) {
	b := baseChain(t)
	c := clone(b[2])
	c.PublicKey = eve.pem
	if c.VerifySignature() {
		t.Fatal("signature verified under a stale cached key")
	}
	c = clone(b[2])
	c.Signature = b[1].Signature
	if c.VerifySignature() {
		t.Fatal("stale cached signature verified")
	}
	// A hand-built capability, with no cache at all.
	d := *b[2]
	hand := Capability{CapabilityID: d.CapabilityID, IssuerAgent: d.IssuerAgent, SubjectAgent: d.SubjectAgent,
		Permissions: d.Permissions, Constraints: d.Constraints, IssuedAt: d.IssuedAt, ExpiresAt: d.ExpiresAt,
		ParentCapabilityID: d.ParentCapabilityID, SignatureAlgo: d.SignatureAlgo, Signature: d.Signature, PublicKey: d.PublicKey}
	if err := VerifyChain([]*Capability{b[0], b[1], &hand}, allAgents(t), now); err != nil {
		t.Fatal(err)
	}
	hand.PublicKey = "not a key"
	if got := codeOf(VerifyChain([]*Capability{b[0], b[1], &hand}, allAgents(t), now)); got != reason.CapabilityInvalid {
		t.Fatalf("got %s", got)
	}
}

func TestAuthorize(t *testing.T) {
	leaf := baseChain(t)[1] // read, search; max 5
	unlimited := forge(t, nil, spec{id: "u", by: alice, to: bob, perms: perms(nil, "read")})
	tests := []struct {
		name    string
		leaf    *Capability
		actions []string
		max     *int64
		want    reason.Code
	}{
		{"subset under the limit", leaf, []string{"read"}, i64(3), reason.OK},
		{"all actions at the limit", leaf, []string{"search", "read"}, i64(5), reason.OK},
		{"no actions", leaf, nil, i64(0), reason.OK},
		{"action outside", leaf, []string{"read", "delete"}, i64(1), reason.ActionNotAuthorized},
		{"over the limit", leaf, []string{"read"}, i64(6), reason.ActionNotAuthorized},
		{"unlimited under a limit", leaf, []string{"read"}, nil, reason.ActionNotAuthorized},
		{"unlimited under no limit", unlimited, []string{"read"}, nil, reason.OK},
		{"any limit under no limit", unlimited, []string{"read"}, i64(1 << 40), reason.OK},
		{"no capability", nil, []string{"read"}, i64(1), reason.ActionNotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeOf(Authorize(tc.leaf, tc.actions, tc.max)); got != tc.want {
				t.Fatalf("Authorize = %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("many actions", func(t *testing.T) {
		var many []string
		for i := range 200 {
			many = append(many, string(rune('a'+i%26))+string(rune('a'+i/26)))
		}
		big := forge(t, nil, spec{id: "big", by: alice, to: bob, perms: perms(nil, many...)})
		if err := Authorize(big, many[50:], nil); err != nil {
			t.Fatal(err)
		}
		if got := codeOf(Authorize(big, append(many[:10:10], "zz"), nil)); got != reason.ActionNotAuthorized {
			t.Fatalf("got %s", got)
		}
	})
}

func TestAuthorizeConstraints(t *testing.T) {
	chain := baseChain(t) // hop1 sets {120, eu, review}; hop2 inherits
	if got := EffectiveConstraints(chain); got != chain[1].Constraints {
		t.Fatalf("EffectiveConstraints = %+v, want hop1's", got)
	}
	if got := EffectiveConstraints(chain[:1]); got != nil {
		t.Fatalf("EffectiveConstraints(root) = %+v, want nil", got)
	}
	tests := []struct {
		name  string
		chain []*Capability
		c     *Constraints
		want  reason.Code
	}{
		{"same", chain, &Constraints{MaxRuntimeSeconds: i64(120), DataBoundary: sp("eu"), RequiresHumanReview: true}, reason.OK},
		{"stricter", chain, &Constraints{MaxRuntimeSeconds: i64(1), DataBoundary: sp("eu"), RequiresHumanReview: true}, reason.OK},
		{"none under inherited constraints", chain, nil, reason.ActionNotAuthorized},
		{"review dropped", chain, &Constraints{MaxRuntimeSeconds: i64(120), DataBoundary: sp("eu")}, reason.ActionNotAuthorized},
		{"none under none", chain[:1], nil, reason.OK},
		{"empty chain", nil, nil, reason.ActionNotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeOf(AuthorizeConstraints(tc.chain, tc.c)); got != tc.want {
				t.Fatalf("AuthorizeConstraints = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	got := IDs(baseChain(t))
	if len(got) != 3 || got[0] != "root" || got[1] != "hop1" || got[2] != "hop2" {
		t.Fatalf("IDs = %q", got)
	}
}
