package gate_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// t0 is the protocol time at which every fixture handoff is issued.
var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

type agent struct {
	key ed25519.PrivateKey
	s   *identity.KeySigner
	id  string
}

func newAgent(t testing.TB) agent {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	return agent{k, s, identity.AgentIDOf(s.Public())}
}

// fixture: alice, bob, carol registered; olga and oscar are approvers.
type fixture struct {
	alice, bob, carol, olga, oscar agent
	reg                            *registry.Registry
	replay                         *replay.Memory
	revoked                        *revocation.Memory
	// clock is the protocol clock: t0 plus the time elapsed since the fixture was made
	// (inside a synctest bubble, fake time).
	clock func() time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{alice: newAgent(t), bob: newAgent(t), carol: newAgent(t), olga: newAgent(t), oscar: newAgent(t)}
	f.reg = registry.New()
	for _, a := range []agent{f.alice, f.bob, f.carol} {
		if _, err := f.reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []agent{f.olga, f.oscar} {
		if _, err := f.reg.Add("", a.s.Public(), []string{registry.RoleApprover}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	f.clock = func() time.Time { return t0.Add(time.Since(start)) }
	f.replay = replay.NewMemory(replay.MemoryConfig{Now: f.clock})
	f.revoked = revocation.NewMemory(revocation.MemoryConfig{Now: f.clock})
	return f
}

func (f *fixture) verifier(t testing.TB, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	v, err := verify.New(f.reg, f.replay, append([]verify.Option{verify.WithRevocations(f.revoked), verify.WithClock(f.clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gate returns a gate over the fixture's verifier and revocation store.
func (f *fixture) gate(t testing.TB, opts ...gate.Option) *gate.Gate {
	return mustGate(t, f.verifier(t), f.revoked, opts...)
}

// draft is a valid read packet (900 s window) from one agent to another, issued at t0.
func draft(from, to agent) *packet.Packet {
	ttl := int64(900)
	risk := packet.RiskRead
	return &packet.Packet{
		PacketID: packet.NewID(), TaskID: "task-1", ToAgent: to.id, Nonce: packet.NewID(),
		Intent:      "Summarize the open support tickets",
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
		IssuedAt:    canonical.TimestampOf(t0), ExpiresAt: canonical.TimestampOf(t0.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
}

func seal(t testing.TB, p *packet.Packet, s identity.Signer, caps []string) []byte {
	t.Helper()
	if err := p.Sign(s, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	env := &packet.Envelope{Packet: p, Capabilities: caps}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reviewed is a signed packet from alice to bob that requires human review.
func (f *fixture) reviewed(t testing.TB) (*packet.Packet, []byte) {
	t.Helper()
	p := draft(f.alice, f.bob)
	p.Constraints = &packet.Constraints{RequiresHumanReview: true}
	return p, seal(t, p, f.alice.s, nil)
}

// chained is a signed packet from bob to carol under the chain alice→bob (root, rootTTL)
// → bob→carol (leaf, leafTTL).
func (f *fixture) chained(t testing.TB, rootTTL, leafTTL time.Duration) (root, leaf *capability.Capability, env []byte) {
	t.Helper()
	var err error
	root, err = capability.Issue(f.alice.s, f.bob.id, capability.Permissions{AllowedActions: []string{"read_tickets", "search_kb"}}, nil, t0, t0.Add(rootTTL))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err = capability.Derive(root, f.bob.s, f.carol.id, capability.Permissions{AllowedActions: []string{"read_tickets"}}, nil, t0, t0.Add(leafTTL))
	if err != nil {
		t.Fatal(err)
	}
	p := draft(f.bob, f.carol)
	tok := leaf.Token()
	p.CapabilityToken = &tok
	return root, leaf, seal(t, p, f.bob.s, []string{root.Token(), tok})
}

func (f *fixture) approve(t testing.TB, who agent, p *packet.Packet, decision string) *approval.Approval {
	t.Helper()
	d, err := approval.Digest(p, packet.Rule04)
	if err != nil {
		t.Fatal(err)
	}
	a, err := approval.New(who.s, d, decision, f.clock(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func revoke(t testing.TB, s revocation.Store, kind revocation.Kind, id string) {
	t.Helper()
	if err := s.Revoke(context.Background(), revocation.Entry{Kind: kind, ID: id}); err != nil {
		t.Fatal(err)
	}
}

// result is what Execute returned.
type result struct {
	d   *verify.Decision
	err error
}

// codeOf is the reason code an error carries ("" for none).
func codeOf(err error) reason.Code {
	var re *reason.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// mustGate is gate.New for tests.
func mustGate(t testing.TB, v *verify.Verifier, revocations revocation.Store, opts ...gate.Option) *gate.Gate {
	t.Helper()
	g, err := gate.New(v, revocations, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
