package gate

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// TestReverifyVerifiesTheParsedEnvelope: re-verification with collected approvals hands the
// verifier the envelope the gate parsed, as parsed (the same packet, chain and capability
// tokens, never re-encoded and re-parsed), and leaves the gate's own copy untouched.
func TestReverifyVerifiesTheParsedEnvelope(t *testing.T) {
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	signer := func() *identity.KeySigner {
		k, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return identity.NewKeySigner(k)
	}
	alice, bob, olga := signer(), signer(), signer()
	reg := registry.New()
	for _, s := range []*identity.KeySigner{alice, bob} {
		if _, err := reg.Add("", s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Add("", olga.Public(), []string{registry.RoleApprover}, nil); err != nil {
		t.Fatal(err)
	}
	root, err := capability.Issue(alice, identity.AgentIDOf(bob.Public()), capability.Permissions{AllowedActions: []string{"read_tickets"}}, nil, at, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		rule  packet.Rule
		chain bool // under a capability, carried in the envelope
	}{
		{"rule 0.4", packet.Rule04, false},
		{"rule 0.3.3", packet.Rule033, false},
		{"rule 0.3.3 under a capability", packet.Rule033, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ttl, risk := int64(900), packet.RiskRead
			p := &packet.Packet{
				PacketID: packet.NewID(), TaskID: "task-1", ToAgent: identity.AgentIDOf(bob.Public()), Nonce: packet.NewID(),
				Intent:      "Summarize the open support tickets",
				Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
				IssuedAt:    canonical.TimestampOf(at), ExpiresAt: canonical.TimestampOf(at.Add(900 * time.Second)),
				RiskLevel: &risk, TTLSeconds: &ttl, Constraints: &packet.Constraints{RequiresHumanReview: true},
			}
			var caps []string
			if c.chain {
				tok := root.Token()
				p.CapabilityToken, caps = &tok, []string{tok}
			}
			if err := p.Sign(alice, c.rule); err != nil {
				t.Fatal(err)
			}
			wire, err := (&packet.Envelope{Packet: p, Capabilities: caps}).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			env, err := packet.ParseEnvelope(wire, canonical.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			digest, err := approval.Digest(env.Packet, c.rule)
			if err != nil {
				t.Fatal(err)
			}
			a, err := approval.New(olga, digest, approval.Approve, at, time.Hour, "")
			if err != nil {
				t.Fatal(err)
			}

			var seen *packet.Envelope
			hook := func(_ context.Context, h *verify.Handoff) error { seen = h.Envelope; return nil }
			revs := revocation.NewMemory(revocation.MemoryConfig{})
			v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), verify.WithRevocations(revs),
				verify.WithClock(func() time.Time { return at.Add(time.Minute) }), verify.WithPolicy(hook))
			if err != nil {
				t.Fatal(err)
			}
			g, err := New(v, revs)
			if err != nil {
				t.Fatal(err)
			}
			d := g.reverify(t.Context(), env, []canonical.Value{a.Value()})
			if !d.Accepted() {
				t.Fatalf("%s: %s", d.Reason, d.Detail)
			}
			switch {
			case seen == nil:
				t.Fatal("the policy hook never ran")
			case seen.Packet != env.Packet:
				t.Fatal("the verifier got a re-parsed packet, not the one the gate parsed")
			case len(seen.Capabilities) != len(env.Capabilities) || (len(caps) > 0 && &seen.Capabilities[0] != &env.Capabilities[0]):
				t.Fatal("the verifier got re-parsed capability tokens")
			case len(seen.Approvals) != 1:
				t.Fatalf("the verifier saw %d approvals, want the 1 collected", len(seen.Approvals))
			case len(env.Approvals) != 0:
				t.Fatal("re-verification changed the gate's copy of the envelope")
			}
			if !slices.Equal(env.Capabilities, caps) {
				t.Fatal("capabilities changed")
			}
		})
	}
}
