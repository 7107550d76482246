package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

func TestRecipientBinding(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name      string
		option    string // WithRecipient ("" for none)
		request   string // Request.Recipient
		to        func(f *fixture) agent
		want      reason.Code
		toBobNext bool // the rejection must not have spent the nonce
	}{
		{"for me", f.bob.id, "", func(f *fixture) agent { return f.bob }, reason.OK, false},
		{"for someone else", f.carol.id, "", func(f *fixture) agent { return f.bob }, reason.WrongRecipient, false},
		{"for the sender itself", f.bob.id, "", func(f *fixture) agent { return f.alice }, reason.WrongRecipient, false},
		{"for an unregistered agent", f.bob.id, "", func(f *fixture) agent { return f.mallory }, reason.WrongRecipient, false},
		{"request overrides the option", f.carol.id, f.bob.id, func(f *fixture) agent { return f.bob }, reason.OK, false},
		{"request binds without an option", "", f.carol.id, func(f *fixture) agent { return f.bob }, reason.WrongRecipient, false},
		{"no recipient binds nothing", "", "", func(f *fixture) agent { return f.carol }, reason.OK, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var opts []Option
			if c.option != "" {
				opts = append(opts, WithRecipient(c.option))
			}
			v := f.verifier(t, opts...)
			b := seal(t, draft(f.alice, c.to(f)), f.alice.s, nil)
			d := v.VerifyRequest(context.Background(), b, Request{At: t0.Add(time.Second), Recipient: c.request})
			if d.Reason != c.want {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Detail, c.want)
			}
			if c.want == reason.WrongRecipient {
				// The right receiver still gets the packet: the rejection consumed nothing.
				right := f.verifier(t)
				if d := right.VerifyAt(context.Background(), b, t0.Add(time.Second)); !d.Accepted() {
					t.Fatalf("after a wrong-recipient rejection the real receiver got %s", d.Reason)
				}
			}
		})
	}
	// Near-miss spellings of the recipient never match.
	for _, spelled := range []string{f.bob.id + " ", " " + f.bob.id, strings.ToUpper(f.bob.id), f.bob.id[:len(f.bob.id)-1], f.bob.id + "\u200b"} {
		v := f.verifier(t, WithRecipient(spelled))
		if d := v.VerifyAt(context.Background(), seal(t, draft(f.alice, f.bob), f.alice.s, nil), t0.Add(time.Second)); d.Reason != reason.WrongRecipient {
			t.Errorf("recipient %q: %s, want wrong_recipient", spelled, d.Reason)
		}
	}
	if _, err := New(f.reg, f.replay, WithRecipient("")); err == nil {
		t.Error("WithRecipient(\"\") accepted")
	}
}

func TestDryRunConsumesNothing(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t)
	ctx := context.Background()
	at := t0.Add(time.Second)
	b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	for i := range 3 {
		d := v.VerifyRequest(ctx, b, Request{At: at, DryRun: true})
		if !d.Accepted() || !d.DryRun {
			t.Fatalf("dry run %d: %s dry_run=%v", i, d.Reason, d.DryRun)
		}
	}
	if d := v.VerifyAt(ctx, b, at); !d.Accepted() || d.DryRun {
		t.Fatalf("real verification after dry runs: %s", d.Reason)
	}
	if d := v.VerifyRequest(ctx, b, Request{At: at, DryRun: true}); d.Reason != reason.ReplayDetected {
		t.Fatalf("dry run of a spent packet: %s, want replay_detected", d.Reason)
	}
	// A dry run of a denied packet reports the deny but does not remember it.
	p := draft(f.alice, f.bob)
	p.Constraints = &packet.Constraints{RequiresHumanReview: true}
	if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	denied := envelope(t, p, nil, f.approve(t, f.olga, p, approval.Deny))
	if d := v.VerifyRequest(ctx, denied, Request{At: at, DryRun: true}); d.Reason != reason.PolicyDenied {
		t.Fatalf("dry run with a deny: %s", d.Reason)
	}
	approved := envelope(t, p, nil, f.approve(t, f.oscar, p, approval.Approve))
	if d := v.VerifyAt(ctx, approved, at); !d.Accepted() {
		t.Fatalf("the dry run remembered a deny: %s", d.Reason)
	}
	// A store that cannot be read without writing fails closed in a dry run.
	w, err := New(f.reg, recordOnly{f.replay})
	if err != nil {
		t.Fatal(err)
	}
	if d := w.VerifyRequest(ctx, seal(t, draft(f.alice, f.bob), f.alice.s, nil), Request{At: at, DryRun: true}); d.Reason != reason.StoreUnavailable {
		t.Fatalf("dry run without a peekable store: %s", d.Reason)
	}
}

type recordOnly struct{ s replay.Store }

func (r recordOnly) Record(ctx context.Context, k []byte, exp time.Time) (bool, error) {
	return r.s.Record(ctx, k, exp)
}

// clock is a settable clock shared by a store and the verifiers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestNonceRetentionIndependentOfVerifierSettings(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: t0}
	store := replay.NewMemory(replay.MemoryConfig{Now: clk.now})
	strict, err := New(f.reg, store, WithGrace(0), WithSkew(0), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := New(f.reg, store, WithGrace(packet.MaxGrace), WithSkew(packet.MaxSkew), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	expiry := t0.Add(900 * time.Second)
	clk.set(expiry.Add(-time.Second))
	if d := strict.Verify(ctx, b); !d.Accepted() {
		t.Fatalf("first verifier: %s", d.Reason)
	}
	// Every instant at which the lenient verifier would still take the packet on time
	// grounds, the shared store must still remember the nonce.
	for _, late := range []time.Duration{0, time.Second, 30 * time.Second, 31 * time.Second, 59 * time.Second, packet.MaxGrace} {
		clk.set(expiry.Add(late))
		if d := lenient.Verify(ctx, b); d.Reason != reason.ReplayDetected {
			t.Fatalf("%v after expiry, a verifier with grace %v: %s, want replay_detected", late, packet.MaxGrace, d.Reason)
		}
	}
	clk.set(expiry.Add(packet.MaxGrace + time.Second))
	if d := lenient.Verify(ctx, b); d.Reason != reason.Expired {
		t.Fatalf("past every grace: %s", d.Reason)
	}
}

func TestZeroSkewMeansZero(t *testing.T) {
	f := newFixture(t)
	b := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
	early := t0.Add(-time.Second)
	if d := f.verifier(t, WithSkew(0)).VerifyRequest(context.Background(), b, Request{At: early, DryRun: true}); d.Reason != reason.IssuedInFuture {
		t.Fatalf("skew 0, issued 1s ahead: %s", d.Reason)
	}
	if d := f.verifier(t).VerifyRequest(context.Background(), b, Request{At: early, DryRun: true}); !d.Accepted() {
		t.Fatalf("default skew, issued 1s ahead: %s", d.Reason)
	}
	if d := f.verifier(t, WithSkew(0)).VerifyAt(context.Background(), b, t0); !d.Accepted() {
		t.Fatalf("skew 0, issued now: %s", d.Reason)
	}
	if _, err := New(f.reg, f.replay, WithSkew(packet.MaxSkew+time.Second)); err == nil {
		t.Fatal("skew above the maximum accepted")
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	f := newFixture(t)
	var nilReg *registry.Registry
	var nilReplay *replay.Memory
	var nilRev *revocation.Memory
	for name, build := range map[string]func() (*Verifier, error){
		"nil registry":              func() (*Verifier, error) { return New(nil, f.replay) },
		"typed nil registry":        func() (*Verifier, error) { return New(nilReg, f.replay) },
		"nil replay store":          func() (*Verifier, error) { return New(f.reg, nil) },
		"typed nil replay store":    func() (*Verifier, error) { return New(f.reg, nilReplay) },
		"nil revocation store":      func() (*Verifier, error) { return New(f.reg, f.replay, WithRevocations(nilRev)) },
		"nil clock":                 func() (*Verifier, error) { return New(f.reg, f.replay, WithClock(nil)) },
		"nil option":                func() (*Verifier, error) { return New(f.reg, f.replay, nil) },
		"nil action policy":         func() (*Verifier, error) { return New(f.reg, f.replay, WithActionPolicy(nil)) },
		"grace above the maximum":   func() (*Verifier, error) { return New(f.reg, f.replay, WithGrace(packet.MaxGrace+1)) },
		"no risk levels":            func() (*Verifier, error) { return New(f.reg, f.replay, WithTTL()) },
		"approval threshold 0":      func() (*Verifier, error) { return New(f.reg, f.replay, WithApprovalThreshold(0)) },
		"negative delegation depth": func() (*Verifier, error) { return New(f.reg, f.replay, WithMaxDepth(-1)) },
	} {
		if v, err := build(); err == nil || v != nil {
			t.Errorf("%s: New returned (%v, %v), want an error", name, v, err)
		}
	}
}

// reviewed returns alice's review-requiring packet to bob, signed.
func (f *fixture) reviewed(t *testing.T) *packet.Packet {
	t.Helper()
	p := draft(f.alice, f.bob)
	p.Constraints = &packet.Constraints{RequiresHumanReview: true}
	if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	return p
}

// aliased re-signs approval a under another approver id (the same key registered twice).
func aliased(a *approval.Approval, id string, key ed25519.PrivateKey) *approval.Approval {
	b := *a
	b.Approver = id
	b.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, b.SigningBytes()))
	return &b
}

func TestApprovalCountingRules(t *testing.T) {
	type tc struct {
		name      string
		threshold int
		setup     func(t *testing.T, f *fixture)
		approvals func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval
		want      reason.Code
	}
	one := func(who func(f *fixture) agent) func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
		return func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, who(f), p, approval.Approve)}
		}
	}
	olga := func(f *fixture) agent { return f.olga }
	cases := []tc{
		{"approved", 1, nil, one(olga), reason.OK},
		{"no approval", 1, nil, func(*testing.T, *fixture, *packet.Packet) []*approval.Approval { return nil }, reason.HumanReviewRequired},
		{"approver revoked in the revocation store", 1, func(t *testing.T, f *fixture) {
			if err := f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: f.olga.id}); err != nil {
				t.Fatal(err)
			}
		}, one(olga), reason.ApprovalInvalid},
		{"approver revoked in the registry", 1, func(t *testing.T, f *fixture) {
			if err := f.reg.Revoke(f.olga.id, t0.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, one(olga), reason.ApprovalInvalid},
		{"the sender approves its own packet", 1, func(t *testing.T, f *fixture) {
			f.reg.Add(f.alice.id, f.alice.s.Public(), []string{registry.RoleApprover}, nil)
		}, one(func(f *fixture) agent { return f.alice }), reason.ApprovalInvalid},
		{"the receiver approves the packet it receives", 1, func(t *testing.T, f *fixture) {
			f.reg.Add(f.bob.id, f.bob.s.Public(), []string{registry.RoleApprover}, nil)
		}, one(func(f *fixture) agent { return f.bob }), reason.ApprovalInvalid},
		{"the sender's key registered as another approver", 1, func(t *testing.T, f *fixture) {
			f.aliases = map[string]string{"agent:alice-as-approver": f.alice.id}
			f.reg.Add(f.alice.id, f.alice.s.Public(), []string{registry.RoleApprover}, nil)
		}, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{aliased(f.approve(t, f.alice, p, approval.Approve), "agent:alice-as-approver", f.alice.key)}
		}, reason.ApprovalInvalid},
		{"m-of-n: two distinct approvers", 2, nil, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, f.olga, p, approval.Approve), f.approve(t, f.oscar, p, approval.Approve)}
		}, reason.OK},
		{"m-of-n: one approver twice", 2, nil, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, f.olga, p, approval.Approve), f.approve(t, f.olga, p, approval.Approve)}
		}, reason.HumanReviewRequired},
		{"m-of-n: one key under two approver ids counts once", 2, func(t *testing.T, f *fixture) {
			// The registry file refuses one key under two agents; another Registry might not.
			f.aliases = map[string]string{"agent:olga-again": f.olga.id}
		}, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			a := f.approve(t, f.olga, p, approval.Approve)
			return []*approval.Approval{a, aliased(a, "agent:olga-again", f.olga.key)}
		}, reason.HumanReviewRequired},
		{"m-of-n: one approver id with two keys counts once", 2, func(t *testing.T, f *fixture) {
			f.spare = newAgent(t)
			if _, err := f.reg.Add(f.olga.id, f.spare.s.Public(), nil, nil); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, f.olga, p, approval.Approve), aliased(f.approve(t, f.spare, p, approval.Approve), f.olga.id, f.spare.key)}
		}, reason.HumanReviewRequired},
		{"a deny vetoes approvals", 1, nil, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, f.oscar, p, approval.Approve), f.approve(t, f.olga, p, approval.Deny)}
		}, reason.PolicyDenied},
		{"an approval of another packet", 1, nil, func(t *testing.T, f *fixture, p *packet.Packet) []*approval.Approval {
			return []*approval.Approval{f.approve(t, f.olga, draft(f.alice, f.bob), approval.Approve)}
		}, reason.ApprovalInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.setup != nil {
				c.setup(t, f)
			}
			p := f.reviewed(t)
			var reg Registry = f.reg
			if f.aliases != nil {
				reg = aliasRegistry{f.reg, f.aliases}
			}
			v, err := New(reg, f.replay, WithRevocations(f.revoked), WithApprovalThreshold(c.threshold))
			if err != nil {
				t.Fatal(err)
			}
			d := v.VerifyAt(context.Background(), envelope(t, p, nil, c.approvals(t, f, p)...), t0.Add(time.Second))
			if d.Reason != c.want {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Detail, c.want)
			}
		})
	}
}

func TestDenySticks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := t0.Add(time.Second)
	p := f.reviewed(t)
	v := f.verifier(t)
	if d := v.VerifyAt(ctx, envelope(t, p, nil, f.approve(t, f.olga, p, approval.Deny)), at); d.Reason != reason.PolicyDenied {
		t.Fatalf("with the deny: %s", d.Reason)
	}
	resent := map[string][]byte{
		"without the deny":          envelope(t, p, nil),
		"with another approval":     envelope(t, p, nil, f.approve(t, f.oscar, p, approval.Approve)),
		"with the denier's approve": envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve)),
	}
	// Re-signed under the 0.3.3 rule: other signed bytes, same sender key and nonce.
	q := *p
	if err := q.Sign(f.alice.s, packet.Rule033); err != nil {
		t.Fatal(err)
	}
	resent["re-signed under the other rule, approved"] = envelope(t, &q, nil, f.approve(t, f.oscar, &q, approval.Approve))
	for name, b := range resent {
		for vname, w := range map[string]*Verifier{"same verifier": v, "another verifier on the shared store": f.verifier(t)} {
			if d := w.VerifyAt(ctx, b, at); d.Reason != reason.PolicyDenied {
				t.Errorf("%s, %s: %s, want policy_denied", name, vname, d.Reason)
			}
		}
	}
	// A deny needs a valid approver: a forged or unregistered deny records nothing.
	p2 := f.reviewed(t)
	forged := f.approve(t, f.mallory, p2, approval.Deny)
	if d := v.VerifyAt(ctx, envelope(t, p2, nil, forged), at); d.Reason != reason.ApprovalInvalid {
		t.Fatalf("unregistered deny: %s", d.Reason)
	}
	if d := v.VerifyAt(ctx, envelope(t, p2, nil, f.approve(t, f.oscar, p2, approval.Approve)), at); !d.Accepted() {
		t.Fatalf("an invalid deny was remembered: %s", d.Reason)
	}
	// Without a revocation store the verifier remembers denies in memory.
	w, err := New(f.reg, replay.NewMemory(replay.MemoryConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	p3 := f.reviewed(t)
	w.VerifyAt(ctx, envelope(t, p3, nil, f.approve(t, f.olga, p3, approval.Deny)), at)
	if d := w.VerifyAt(ctx, envelope(t, p3, nil, f.approve(t, f.oscar, p3, approval.Approve)), at); d.Reason != reason.PolicyDenied {
		t.Fatalf("in-memory deny: %s", d.Reason)
	}
}

func TestOverlapFlaggedOnApprovalsAndLinks(t *testing.T) {
	ctx := context.Background()
	rotate := func(t *testing.T, f *fixture, id string) {
		t.Helper()
		if err := f.reg.Rotate(id, newAgent(t).s.Public(), t0.Add(10*time.Second), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("approval key in overlap", func(t *testing.T) {
		f := newFixture(t)
		rotate(t, f, f.olga.id)
		p := f.reviewed(t)
		d := f.verifier(t).VerifyAt(ctx, envelope(t, p, nil, f.approve(t, f.olga, p, approval.Approve)), t0.Add(20*time.Second))
		if !d.Accepted() || len(d.Flags) != 1 || d.Flags[0] != FlagOverlapUsed {
			t.Fatalf("%s %v", d.Reason, d.Flags)
		}
	})
	t.Run("capability link key in overlap", func(t *testing.T) {
		f := newFixture(t)
		root := f.grant(t, f.alice, f.bob, []string{"read_tickets"}, time.Hour)
		rotate(t, f, f.alice.id) // alice issued the root, then rotated
		tok := root.Token()
		leaf := derive(t, root, f.bob, f.carol, []string{"read_tickets"})
		caps := []string{tok, mustToken(t, leaf)}
		p := draft(f.bob, f.carol)
		p.CapabilityToken = &caps[1]
		d := f.verifier(t).VerifyAt(ctx, seal(t, p, f.bob.s, caps), t0.Add(20*time.Second))
		if !d.Accepted() || len(d.Flags) != 1 || d.Flags[0] != FlagOverlapUsed {
			t.Fatalf("%s (%s) %v", d.Reason, d.Detail, d.Flags)
		}
		d = f.verifier(t).VerifyAt(ctx, seal(t, draft(f.bob, f.carol), f.bob.s, nil), t0.Add(20*time.Second))
		if !d.Accepted() || len(d.Flags) != 0 {
			t.Fatalf("no overlapping key, flags %v", d.Flags)
		}
	})
}

func mustToken(t *testing.T, c *capability.Capability) string {
	t.Helper()
	return c.Token()
}

func TestActionNamesWithCommasAreMalformed(t *testing.T) {
	f := newFixture(t)
	for _, actions := range [][]string{{"read,delete_user"}, {"read_tickets", ","}, {"read_tickets", ""}, {",read"}} {
		p := draft(f.alice, f.bob)
		p.Permissions.AllowedActions = actions
		if d := f.verifier(t).VerifyAt(context.Background(), seal(t, p, f.alice.s, nil), t0.Add(time.Second)); d.Reason != reason.MalformedEnvelope {
			t.Errorf("actions %q: %s, want malformed_envelope", actions, d.Reason)
		}
	}
	root := f.grant(t, f.alice, f.bob, []string{"read_tickets,delete_user"}, time.Hour)
	p := draft(f.alice, f.bob)
	tok := mustToken(t, root)
	p.CapabilityToken = &tok
	if d := f.verifier(t).VerifyAt(context.Background(), seal(t, p, f.alice.s, nil), t0.Add(time.Second)); d.Reason != reason.MalformedEnvelope {
		t.Errorf("capability action with a comma: %s, want malformed_envelope", d.Reason)
	}
}

// catalogue is a test ActionPolicy: exact names, then a default rule.
type catalogue struct {
	rules map[string]ActionRule
	other ActionRule
}

func (c catalogue) ActionRule(a string) ActionRule {
	if r, ok := c.rules[a]; ok {
		return r
	}
	return c.other
}

func TestActionPolicy(t *testing.T) {
	pol := catalogue{rules: map[string]ActionRule{
		"read_tickets": {Risk: packet.RiskRead},
		"issue_refund": {Risk: packet.RiskRead}, // the receiver knows this one is harmless
		"send_email":   {Risk: packet.RiskWrite, Review: true},
		"admin_reset":  {Deny: true},
	}, other: ActionRule{Reject: true}}
	cases := []struct {
		name    string
		actions []string
		risk    string
		ttl     int64
		strict  bool
		want    reason.Code
	}{
		{"known read", []string{"read_tickets"}, packet.RiskRead, 900, false, reason.OK},
		{"denied action", []string{"read_tickets", "admin_reset"}, packet.RiskRead, 900, false, reason.PolicyDenied},
		{"unknown action rejected", []string{"read_tickets", "export_db"}, packet.RiskRead, 900, false, reason.ActionNotAuthorized},
		{"review action needs approval", []string{"send_email"}, packet.RiskWrite, 120, false, reason.HumanReviewRequired},
		{"policy marks a strict-mode write as read", []string{"issue_refund"}, packet.RiskRead, 900, true, reason.OK},
		{"policy risk raises a read label", []string{"send_email"}, packet.RiskRead, 900, true, reason.TTLPolicyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			opts := []Option{WithActionPolicy(pol)}
			if c.strict {
				opts = append(opts, WithStrict())
			}
			p := draft(f.alice, f.bob)
			p.Permissions.AllowedActions = c.actions
			p.RiskLevel, p.TTLSeconds = &c.risk, &c.ttl
			p.ExpiresAt = p.IssuedAt
			p.ExpiresAt.Micros += c.ttl * 1e6
			d := f.verifier(t, opts...).VerifyAt(context.Background(), seal(t, p, f.alice.s, nil), t0.Add(time.Second))
			if d.Reason != c.want {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Detail, c.want)
			}
		})
	}
}

func TestAIGeneratedWriteNeedsApprovalFailSafe(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, WithAIWriteApproval(), WithStrict())
	for _, action := range []string{"issue_refund", "wr\u0131te_file", "read\u200b_file"} {
		p := draft(f.alice, f.bob)
		p.Permissions.AllowedActions = []string{action}
		w := packet.RiskWrite
		ttl := int64(120)
		p.RiskLevel, p.TTLSeconds = &w, &ttl
		p.ExpiresAt = p.IssuedAt
		p.ExpiresAt.Micros += 120e6
		p.AIProvenance = aiSource()
		if d := v.VerifyAt(context.Background(), seal(t, p, f.alice.s, nil), t0.Add(time.Second)); d.Reason != reason.HumanReviewRequired {
			t.Errorf("AI-generated %q: %s, want human_review_required", action, d.Reason)
		}
	}
}

func aiSource() *canonical.Value {
	return &canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "source", Value: canonical.Value{Kind: canonical.String, Str: "gpt"}}}}
}

// aliasRegistry answers for alias ids as for the agents they name: one key under two ids.
type aliasRegistry struct {
	*registry.Registry
	aliases map[string]string
}

func (r aliasRegistry) id(a string) string {
	if real, ok := r.aliases[a]; ok {
		return real
	}
	return a
}

func (r aliasRegistry) Resolve(id, pemText string, at time.Time) (registry.Binding, error) {
	return r.Registry.Resolve(r.id(id), pemText, at)
}

func (r aliasRegistry) KeyValid(id string, pub ed25519.PublicKey, at time.Time) bool {
	return r.Registry.KeyValid(r.id(id), pub, at)
}

func (r aliasRegistry) HasRole(id, role string) bool { return r.Registry.HasRole(r.id(id), role) }

func (r aliasRegistry) ValidKeyVerifier(id string, pub ed25519.PublicKey, at time.Time) (identity.Verifier, bool) {
	return r.Registry.ValidKeyVerifier(r.id(id), pub, at)
}

// Approvals verify through the registry's precomputed keys with the same decisions.
func TestApprovalsWithPrecomputedKeys(t *testing.T) {
	f := newFixture(t)
	if err := f.reg.SetVerifierFactory(fastverify.New); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := f.reviewed(t)
	good := f.approve(t, f.olga, p, approval.Approve)
	bad := *good
	sig, _ := base64.StdEncoding.DecodeString(bad.Signature)
	sig[5] ^= 1
	bad.Signature = base64.StdEncoding.EncodeToString(sig)
	if d := f.verifier(t).VerifyRequest(ctx, envelope(t, p, nil, &bad), Request{At: t0.Add(time.Second), DryRun: true}); d.Reason != reason.ApprovalInvalid {
		t.Fatalf("a forged approval with precomputed keys: %s", d.Reason)
	}
	if d := f.verifier(t).VerifyAt(ctx, envelope(t, p, nil, good), t0.Add(time.Second)); !d.Accepted() {
		t.Fatalf("a valid approval with precomputed keys: %s (%s)", d.Reason, d.Detail)
	}
}
