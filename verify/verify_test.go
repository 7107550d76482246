package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

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

// fixture: alice, bob, carol registered; olga and oscar are approvers; mallory is not registered.
type fixture struct {
	alice, bob, carol, olga, oscar, mallory agent
	reg                                     *registry.Registry
	replay                                  *replay.Memory
	revoked                                 *revocation.Memory
	aliases                                 map[string]string // alias id → agent id (aliasRegistry)
	spare                                   agent
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{alice: newAgent(t), bob: newAgent(t), carol: newAgent(t), olga: newAgent(t), oscar: newAgent(t), mallory: newAgent(t)}
	f.reg = registry.New()
	for _, a := range []agent{f.alice, f.bob, f.carol} {
		f.reg.Add("", a.s.Public(), nil, nil)
	}
	for _, a := range []agent{f.olga, f.oscar} {
		f.reg.Add("", a.s.Public(), []string{registry.RoleApprover}, nil)
	}
	f.replay = replay.NewMemory(replay.MemoryConfig{Now: func() time.Time { return t0 }})
	f.revoked = revocation.NewMemory(revocation.MemoryConfig{})
	return f
}

func (f *fixture) verifier(t testing.TB, opts ...Option) *Verifier {
	t.Helper()
	v, err := New(f.reg, f.replay, append([]Option{WithRevocations(f.revoked)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// draft is a valid read packet from alice to bob at t0.
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

func seal(t testing.TB, p *packet.Packet, s identity.Signer, caps []string, approvals ...*approval.Approval) []byte {
	t.Helper()
	if err := p.Sign(s, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	return envelope(t, p, caps, approvals...)
}

func envelope(t testing.TB, p *packet.Packet, caps []string, approvals ...*approval.Approval) []byte {
	t.Helper()
	env := &packet.Envelope{Packet: p, Capabilities: caps}
	for _, a := range approvals {
		env.Approvals = append(env.Approvals, a.Value())
	}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) grant(t testing.TB, from, to agent, actions []string, ttl time.Duration) *capability.Capability {
	t.Helper()
	c, err := capability.Issue(from.s, to.id, capability.Permissions{AllowedActions: actions}, nil, t0, t0.Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func derive(t testing.TB, parent *capability.Capability, from, to agent, actions []string) *capability.Capability {
	t.Helper()
	c, err := capability.Derive(parent, from.s, to.id, capability.Permissions{AllowedActions: actions}, nil, t0, parent.ExpiresAt.Time())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// resign re-signs a hand-edited capability with its issuer's key.
func resign(c *capability.Capability, a agent) *capability.Capability {
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(a.key, c.SigningBytes()))
	return c
}

func digestOf(t testing.TB, p *packet.Packet) [32]byte {
	d, err := approval.Digest(p, packet.Rule04)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) approve(t testing.TB, who agent, p *packet.Packet, decision string) *approval.Approval {
	t.Helper()
	a, err := approval.New(who.s, digestOf(t, p), decision, t0, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type failingStore struct{}

func (failingStore) Record(context.Context, []byte, time.Time) (bool, error) {
	return false, replay.ErrUnavailable
}

func TestEveryReasonCode(t *testing.T) {
	type tc struct {
		name  string
		build func(t *testing.T, f *fixture) ([]byte, []Option)
		at    time.Duration // offset from t0 of the verification instant (default +30 s)
		want  reason.Code
	}
	signed := func(mut func(f *fixture, p *packet.Packet)) func(t *testing.T, f *fixture) ([]byte, []Option) {
		return func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			mut(f, p)
			return seal(t, p, f.alice.s, nil), nil
		}
	}
	withCap := func(mk func(t *testing.T, f *fixture, p *packet.Packet) []string) func(t *testing.T, f *fixture) ([]byte, []Option) {
		return func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.bob, f.carol)
			caps := mk(t, f, p)
			p.CapabilityToken = &caps[len(caps)-1]
			return seal(t, p, f.bob.s, caps), nil
		}
	}
	chain2 := func(t *testing.T, f *fixture) (*capability.Capability, *capability.Capability) {
		root := f.grant(t, f.alice, f.bob, []string{"read_tickets", "search_kb"}, time.Hour)
		return root, derive(t, root, f.bob, f.carol, []string{"read_tickets"})
	}
	cases := []tc{
		{"ok", signed(func(*fixture, *packet.Packet) {}), 0, reason.OK},
		{"malformed: not JSON", func(*testing.T, *fixture) ([]byte, []Option) { return []byte("{"), nil }, 0, reason.MalformedEnvelope},
		{"malformed: unknown packet field", func(t *testing.T, f *fixture) ([]byte, []Option) {
			b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
			return []byte(strings.Replace(string(b), `"goal": null`, `"goal": null, "admin": true`, 1)), nil
		}, 0, reason.MalformedEnvelope},
		{"malformed: oversize", func(t *testing.T, f *fixture) ([]byte, []Option) {
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), []Option{WithLimits(canonical.Limits{MaxBytes: 100})}
		}, 0, reason.MalformedEnvelope},
		{"unsupported algorithm", func(t *testing.T, f *fixture) ([]byte, []Option) {
			b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
			return []byte(strings.Replace(string(b), `"signature_algo": "Ed25519"`, `"signature_algo": "RS256"`, 1)), nil
		}, 0, reason.UnsupportedAlgorithm},
		{"unknown agent", func(t *testing.T, f *fixture) ([]byte, []Option) {
			return seal(t, draft(f.mallory, f.bob), f.mallory.s, nil), nil
		}, 0, reason.UnknownAgent},
		{"public key mismatch (mallory's key, alice's name)", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.mallory, f.bob)
			if err := p.Sign(f.mallory.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			p.FromAgent = f.alice.id
			return envelope(t, p, nil), nil
		}, 0, reason.PublicKeyMismatch},
		{"agent revoked (store)", func(t *testing.T, f *fixture) ([]byte, []Option) {
			f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: f.alice.id, At: t0})
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), nil
		}, 0, reason.AgentRevoked},
		{"agent revoked (registry)", func(t *testing.T, f *fixture) ([]byte, []Option) {
			f.reg.Revoke(f.alice.id, t0)
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), nil
		}, 0, reason.AgentRevoked},
		{"invalid signature", func(t *testing.T, f *fixture) ([]byte, []Option) {
			b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
			return []byte(strings.Replace(string(b), "Summarize", "Exfiltrate", 1)), nil
		}, 0, reason.InvalidSignature},
		{"malformed time window", signed(func(f *fixture, p *packet.Packet) { p.ExpiresAt = p.IssuedAt; p.TTLSeconds = nil }), 0, reason.MalformedTimeWindow},
		{"issued in the future", signed(func(*fixture, *packet.Packet) {}), -31 * time.Second, reason.IssuedInFuture},
		{"expired", signed(func(*fixture, *packet.Packet) {}), 901 * time.Second, reason.Expired},
		{"ttl policy mismatch", signed(func(f *fixture, p *packet.Packet) { ttl := int64(60); p.TTLSeconds = &ttl }), 0, reason.TTLPolicyMismatch},
		{"write labelled read (no ttl_seconds)", signed(func(f *fixture, p *packet.Packet) {
			p.TTLSeconds = nil
			p.Permissions.AllowedActions = []string{"send_email"}
		}), 0, reason.TTLPolicyMismatch},
		{"unsupported risk level", signed(func(f *fixture, p *packet.Packet) { r := "extreme"; p.RiskLevel = &r }), 0, reason.UnsupportedRisk},
		{"ok with a capability chain", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			return []string{root.Token(), leaf.Token()}
		}), 0, reason.OK},
		{"capability not granted to the receiver", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root := f.grant(t, f.alice, f.bob, []string{"read_tickets"}, time.Hour)
			return []string{root.Token(), derive(t, root, f.bob, f.alice, []string{"read_tickets"}).Token()}
		}), 0, reason.CapabilityInvalid},
		{"capability signed by an unregistered key", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			leaf.PublicKey = identity.PublicKeyPEM(f.mallory.s.Public())
			return []string{root.Token(), resign(leaf, f.mallory).Token()}
		}), 0, reason.CapabilityInvalid},
		{"capability escalation", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			leaf.Permissions.AllowedActions = []string{"read_tickets", "delete_tickets"}
			return []string{root.Token(), resign(leaf, f.bob).Token()}
		}), 0, reason.CapabilityEscalation},
		{"capability expired", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root := f.grant(t, f.alice, f.bob, []string{"read_tickets"}, 20*time.Second)
			return []string{root.Token(), derive(t, root, f.bob, f.carol, []string{"read_tickets"}).Token()}
		}), 0, reason.CapabilityExpired},
		{"capability revoked (root revoked, cascades to the leaf)", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindCapability, ID: root.CapabilityID, At: t0})
			return []string{root.Token(), leaf.Token()}
		}), 0, reason.CapabilityRevoked},
		{"capability issued by a revoked agent", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: f.alice.id, At: t0})
			return []string{root.Token(), leaf.Token()}
		}), 0, reason.CapabilityRevoked},
		{"action not authorized", withCap(func(t *testing.T, f *fixture, p *packet.Packet) []string {
			root, leaf := chain2(t, f)
			p.Permissions.AllowedActions = []string{"read_tickets", "search_kb"}
			return []string{root.Token(), leaf.Token()}
		}), 0, reason.ActionNotAuthorized},
		{"depth exceeded (signed provenance)", signed(func(f *fixture, p *packet.Packet) { p.Provenance = &packet.Provenance{DelegationDepth: 6} }), 0, reason.DepthExceeded},
		{"delegation loop", func(t *testing.T, f *fixture) ([]byte, []Option) {
			root := f.grant(t, f.alice, f.bob, []string{"read_tickets"}, time.Hour)
			back := derive(t, root, f.bob, f.alice, []string{"read_tickets"})
			again := derive(t, back, f.alice, f.bob, []string{"read_tickets"})
			p := draft(f.alice, f.bob)
			tok := again.Token()
			p.CapabilityToken = &tok
			return seal(t, p, f.alice.s, []string{root.Token(), back.Token(), tok}), nil
		}, 0, reason.DelegationLoop},
		{"human review required", signed(func(f *fixture, p *packet.Packet) { p.Constraints = &packet.Constraints{RequiresHumanReview: true} }), 0, reason.HumanReviewRequired},
		{"human review: the reference's unsigned flag is not an approval", signed(func(f *fixture, p *packet.Packet) {
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "human_approval", Value: canonical.Value{Kind: canonical.Bool, Bool: true}}}}
		}), 0, reason.HumanReviewRequired},
		{"approved by a non-approver", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			return envelope(t, p, nil, f.approve(t, f.bob, p, approval.Approve)), nil
		}, 0, reason.ApprovalInvalid},
		{"approved", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			return envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve)), nil
		}, 0, reason.OK},
		{"denied (a deny vetoes)", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			return envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve), f.approve(t, f.oscar, p, approval.Deny)), nil
		}, 0, reason.PolicyDenied},
		{"threshold 2, one approver twice", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			return envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve), f.approve(t, f.olga, p, approval.Approve)), []Option{WithApprovalThreshold(2)}
		}, 0, reason.HumanReviewRequired},
		{"threshold 2, two approvers", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
				t.Fatal(err)
			}
			return envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve), f.approve(t, f.oscar, p, approval.Approve)), []Option{WithApprovalThreshold(2)}
		}, 0, reason.OK},
		{"insecure compatibility switch honours the unsigned flag", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Constraints = &packet.Constraints{RequiresHumanReview: true}
			p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "human_approval", Value: canonical.Value{Kind: canonical.String, Str: "yes"}}}}
			return seal(t, p, f.alice.s, nil), []Option{WithInsecureUnsignedApproval()}
		}, 0, reason.OK},
		{"AI-generated write needs approval under the policy", func(t *testing.T, f *fixture) ([]byte, []Option) {
			p := draft(f.alice, f.bob)
			p.Permissions.AllowedActions = []string{"send_email"}
			ttl, risk := int64(120), packet.RiskWrite
			p.TTLSeconds, p.RiskLevel, p.ExpiresAt = &ttl, &risk, canonical.TimestampOf(t0.Add(120*time.Second))
			p.AIProvenance = &canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "source", Value: canonical.Value{Kind: canonical.String, Str: "gpt"}}}}
			return seal(t, p, f.alice.s, nil), []Option{WithAIWriteApproval()}
		}, 0, reason.HumanReviewRequired},
		{"ai provenance without source", signed(func(f *fixture, p *packet.Packet) {
			p.AIProvenance = &canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "model", Value: canonical.Value{Kind: canonical.String, Str: "x"}}}}
		}), 0, reason.AIProvenanceInvalid},
		{"policy hook denies", func(t *testing.T, f *fixture) ([]byte, []Option) {
			deny := func(context.Context, *Handoff) error { return errors.New("no tickets on Sundays") }
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), []Option{WithPolicy(deny)}
		}, 0, reason.PolicyDenied},
		{"replay", func(t *testing.T, f *fixture) ([]byte, []Option) {
			b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
			if d := f.verifier(t).VerifyAt(context.Background(), b, t0.Add(time.Second)); !d.Accepted() {
				t.Fatalf("first delivery: %+v", d)
			}
			return b, nil
		}, 0, reason.ReplayDetected},
		{"wrong recipient", func(t *testing.T, f *fixture) ([]byte, []Option) {
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), []Option{WithRecipient(f.carol.id)}
		}, 0, reason.WrongRecipient},
		{"store unavailable fails closed", func(t *testing.T, f *fixture) ([]byte, []Option) {
			return seal(t, draft(f.alice, f.bob), f.alice.s, nil), nil
		}, 0, reason.StoreUnavailable},
	}
	covered := map[reason.Code]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			data, opts := c.build(t, f)
			v := f.verifier(t, opts...)
			if c.want == reason.StoreUnavailable {
				var err error
				if v, err = New(f.reg, failingStore{}, opts...); err != nil {
					t.Fatal(err)
				}
			}
			at := c.at
			if at == 0 {
				at = 30 * time.Second
			}
			d := v.VerifyAt(context.Background(), data, t0.Add(at))
			if d.Reason != c.want {
				t.Fatalf("reason %q (%s), want %q", d.Reason, d.Detail, c.want)
			}
			if (c.want == reason.OK) != d.Accepted() {
				t.Fatalf("decision %s with reason %s", d.Decision, d.Reason)
			}
			covered[c.want] = true
		})
	}
	for _, code := range reason.All() {
		if !covered[code] {
			t.Errorf("reason code %q is not exercised", code)
		}
	}
}

func TestForgedCopyDoesNotBurnNonce(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	legit := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	forged := []byte(strings.Replace(string(legit), "Summarize", "Exfiltrate", 1))
	ctx := context.Background()
	if d := v.VerifyAt(ctx, forged, t0); d.Reason != reason.InvalidSignature {
		t.Fatalf("forged: %s", d.Reason)
	}
	if d := v.VerifyAt(ctx, legit, t0); !d.Accepted() {
		t.Fatalf("legit after forged copy: %s %s", d.Reason, d.Detail)
	}
}

func TestOverlapFlag(t *testing.T) {
	f := newFixture(t)
	newKey := newAgent(t)
	if err := f.reg.Rotate(f.alice.id, newKey.s.Public(), t0.Add(10*time.Second), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	v := f.verifier(t)
	d := v.VerifyAt(context.Background(), seal(t, draft(f.alice, f.bob), f.alice.s, nil), t0.Add(20*time.Second))
	if !d.Accepted() || len(d.Flags) != 1 || d.Flags[0] != FlagOverlapUsed {
		t.Fatalf("inside overlap: %+v", d)
	}
	d = v.VerifyAt(context.Background(), seal(t, draft(f.alice, f.bob), f.alice.s, nil), t0.Add(41*time.Second))
	if d.Reason != reason.PublicKeyMismatch {
		t.Fatalf("after overlap: %s", d.Reason)
	}
	// the new key signs for the same agent id
	p := draft(f.alice, f.bob)
	p.FromAgent = f.alice.id // the agent id stays across rotation
	if err := signAs(p, newKey); err != nil {
		t.Fatal(err)
	}
	if d := v.VerifyAt(context.Background(), envelope(t, p, nil), t0.Add(41*time.Second)); !d.Accepted() {
		t.Fatalf("new key: %s %s", d.Reason, d.Detail)
	}
}

// signAs signs p with a's key while keeping p.FromAgent (a rotated agent's id is not the
// id derived from its new key).
func signAs(p *packet.Packet, a agent) error {
	p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{}}
	p.SignatureAlgo = "Ed25519"
	p.PublicKey = identity.PublicKeyPEM(a.s.Public())
	msg, err := p.SigningBytes(nil, packet.Rule04)
	if err != nil {
		return err
	}
	p.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(a.key, msg))
	return nil
}

func TestRule033PacketsVerify(t *testing.T) {
	f := newFixture(t)
	p := draft(f.alice, f.bob)
	p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{
		{Key: "z", Value: canonical.Value{Kind: canonical.Float, Float: 1e-5}},
		{Key: "a", Value: canonical.Value{Kind: canonical.String, Str: "é"}},
	}}
	if err := p.Sign(f.alice.s, packet.Rule033); err != nil {
		t.Fatal(err)
	}
	d := f.verifier(t).VerifyAt(context.Background(), envelope(t, p, nil), t0)
	if !d.Accepted() || d.Rule != packet.Rule033 {
		t.Fatalf("%+v", d)
	}
}

type failingSink struct{}

func (failingSink) Emit(context.Context, audit.Event) error { return errors.New("disk full") }

func TestAuditFailureFailsClosed(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, WithAudit(failingSink{}, ""))
	d := v.VerifyAt(context.Background(), seal(t, draft(f.alice, f.bob), f.alice.s, nil), t0)
	if d.Accepted() || d.Reason != reason.StoreUnavailable || d.AuditErr == nil {
		t.Fatalf("%+v", d)
	}
	d = v.VerifyAt(context.Background(), []byte("{"), t0)
	if d.Reason != reason.MalformedEnvelope || d.AuditErr == nil {
		t.Fatalf("a rejection keeps its reason and reports the audit failure: %+v", d)
	}
}

func TestDepthFromCapabilityChain(t *testing.T) {
	f := newFixture(t)
	root := f.grant(t, f.alice, f.bob, []string{"read_tickets"}, time.Hour)
	leaf := derive(t, root, f.bob, f.carol, []string{"read_tickets"})
	p := draft(f.bob, f.carol)
	tok := leaf.Token()
	p.CapabilityToken = &tok
	env := seal(t, p, f.bob.s, []string{root.Token(), tok})
	for _, c := range []struct {
		max  int
		want reason.Code
	}{{1, reason.DepthExceeded}, {2, reason.OK}} {
		d := f.verifier(t, WithMaxDepth(c.max)).VerifyAt(context.Background(), env, t0.Add(time.Second))
		if d.Reason != c.want {
			t.Errorf("max depth %d: %s (%s), want %s", c.max, d.Reason, d.Detail, c.want)
		}
	}
}
