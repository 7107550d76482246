package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/policy"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

type handoff struct {
	to      string
	actions []string
	risk    string // "" for none
	window  time.Duration
	ai      bool
}

// wire signs a handoff from alice, issued at t0.
func wire(t *testing.T, alice identity.Signer, h handoff) []byte {
	t.Helper()
	secs := int64(h.window / time.Second)
	p := &packet.Packet{
		PacketID: packet.NewID(), TaskID: "task", ToAgent: h.to, Nonce: packet.NewID(), Intent: "x",
		Permissions: packet.Permissions{AllowedActions: h.actions},
		IssuedAt:    canonical.TimestampOf(t0), ExpiresAt: canonical.TimestampOf(t0.Add(h.window)),
		TTLSeconds: &secs,
	}
	if h.risk != "" {
		p.RiskLevel = &h.risk
	}
	if h.ai {
		p.AIProvenance = &canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{
			{Key: "source", Value: canonical.Value{Kind: canonical.String, Str: "model-x"}}}}
	}
	if err := p.Sign(alice, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	b, err := (&packet.Envelope{Packet: p}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPolicyThroughVerifier runs handoffs through a verifier made from a policy's options.
func TestPolicyThroughVerifier(t *testing.T) {
	key, _ := identity.Generate()
	alice := identity.NewKeySigner(key)
	reg := registry.New()
	if _, err := reg.Add("", alice.Public(), nil, nil); err != nil {
		t.Fatal(err)
	}
	const bob, carol = "agent:bob", "agent:carol"
	read := func(actions ...string) handoff { return handoff{bob, actions, "read", 900 * time.Second, false} }
	cases := []struct {
		name   string
		policy string
		h      handoff
		want   reason.Code
	}{
		// as: recipient binding
		{"as: for me", "as: agent:bob", read("read_tickets"), reason.OK},
		{"as: for another agent", "as: agent:bob", handoff{carol, []string{"read_tickets"}, "read", 900 * time.Second, false}, reason.WrongRecipient},
		{"as: near miss", "as: agent:bo", read("read_tickets"), reason.WrongRecipient},
		{"no as binds nothing", "strict: false", handoff{carol, []string{"read_tickets"}, "read", 900 * time.Second, false}, reason.OK},
		// deny
		{"deny exact", "actions: [{match: drop_table, deny: true}]", read("drop_table"), reason.PolicyDenied},
		{"deny prefix", "actions: [{match: \"admin_*\", deny: true}]", read("admin_reset"), reason.PolicyDenied},
		{"deny among others", "actions: [{match: \"admin_*\", deny: true}]", read("read_tickets", "admin_reset"), reason.PolicyDenied},
		{"deny catch-all", "actions: [{match: read_tickets}, {match: \"*\", deny: true}]", read("read_tickets", "lookup"), reason.PolicyDenied},
		{"deny does not match others", "actions: [{match: \"admin_*\", deny: true}]", read("read_tickets", "administer"), reason.OK},
		// unknown_actions: reject
		{"reject unknown", "actions: [{match: read_tickets}]\nunknown_actions: reject", read("read_tickets", "search_kb"), reason.ActionNotAuthorized},
		{"reject look-alike", "actions: [{match: read_tickets}]\nunknown_actions: reject", read("reаd_tickets"), reason.ActionNotAuthorized},
		{"reject case", "actions: [{match: read_tickets}]\nunknown_actions: reject", read("Read_tickets"), reason.ActionNotAuthorized},
		{"reject passes listed", "actions: [{match: read_tickets}, {match: \"search_*\"}]\nunknown_actions: reject", read("read_tickets", "search_kb"), reason.OK},
		{"deny before reject", "actions: [{match: x, deny: true}]\nunknown_actions: reject", read("x", "y"), reason.PolicyDenied},
		// review
		{"review", "actions: [{match: \"send_*\", risk: write, review: true}]", handoff{bob, []string{"send_email"}, "write", 120 * time.Second, false}, reason.HumanReviewRequired},
		{"review among reads", "actions: [{match: issue_refund, review: true}]", read("read_tickets", "issue_refund"), reason.HumanReviewRequired},
		{"review everything", "actions: [{match: \"*\", review: true}]", read("read_tickets"), reason.HumanReviewRequired},
		// risk: strict mode and the classifier
		{"strict: issue_refund is a write", "strict: true", read("issue_refund"), reason.TTLPolicyMismatch},
		{"strict: the policy marks it read", "strict: true\nactions: [{match: issue_refund, risk: read}]", read("issue_refund"), reason.OK},
		{"strict: a look-alike stays write", "strict: true\nactions: [{match: issue_refund, risk: read}]", read("ıssue_refund"), reason.TTLPolicyMismatch},
		{"strict: padded stays write", "strict: true\nactions: [{match: issue_refund, risk: read}]", read("issue_refund "), reason.TTLPolicyMismatch},
		{"strict: unknown write", "strict: true\nunknown_actions: write", read("read_tickets"), reason.TTLPolicyMismatch},
		{"strict: a rule marks a read verb write", "strict: true\nactions: [{match: \"read_*\", risk: write}]", read("read_tickets"), reason.TTLPolicyMismatch},
		{"strict: risk_level required", "strict: true", handoff{bob, []string{"read_tickets"}, "", 900 * time.Second, false}, reason.TTLPolicyMismatch},
		{"strict: read TTL from the policy", "strict: true\nttl: {read: 60s, write: 30s}", read("read_tickets"), reason.TTLPolicyMismatch},
		{"strict: a window inside the policy TTL", "strict: true\nttl: {read: 60s, write: 30s}", handoff{bob, []string{"read_tickets"}, "read", 60 * time.Second, false}, reason.OK},
		{"default mode: unknown read", "unknown_actions: read", handoff{bob, []string{"delete_user"}, "read", 900 * time.Second, false}, reason.OK},
		// approvals
		{"ai write needs review", "approvals: {ai_generated_write: true}", handoff{bob, []string{"send_email"}, "write", 120 * time.Second, true}, reason.HumanReviewRequired},
		{"ai read does not", "approvals: {ai_generated_write: true}", handoff{bob, []string{"read_tickets"}, "read", 900 * time.Second, true}, reason.OK},
		// depth and capability
		{"require_capability", "require_capability: true", read("read_tickets"), reason.CapabilityInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := policy.Parse([]byte("version: 1\n" + c.policy + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			clock := func() time.Time { return t0.Add(time.Second) }
			opts := append(p.Options(), verify.WithClock(clock))
			v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), opts...)
			if err != nil {
				t.Fatal(err)
			}
			d := v.Verify(context.Background(), wire(t, alice, c.h))
			if d.Reason != c.want {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Detail, c.want)
			}
		})
	}
}

// TestSettingsOptions: the knobs reach the verifier.
func TestSettingsOptions(t *testing.T) {
	p, err := policy.Parse([]byte("version: 1\nas: agent:bob\nstrict: true\nskew: 0s\ngrace: 60s\nttl: {read: 10m, write: 1m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New()
	v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), p.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	tp := v.TimePolicy()
	if !tp.Strict || tp.Skew != 0 || tp.Grace != 60*time.Second || v.Recipient() != "agent:bob" ||
		len(tp.Levels) != 2 || tp.Levels[0] != (packet.RiskLevel{Name: "read", TTL: 10 * time.Minute}) || tp.Levels[1] != (packet.RiskLevel{Name: "write", TTL: time.Minute}) {
		t.Fatalf("time policy %+v, recipient %q", tp, v.Recipient())
	}
	// The default policy, nil included, makes the default verifier.
	for _, p := range []*policy.Policy{nil, {}} {
		v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), p.Options()...)
		if err != nil {
			t.Fatal(err)
		}
		if tp := v.TimePolicy(); tp.Strict || tp.Skew != packet.DefaultSkew || tp.Grace != 0 || v.Recipient() != "" {
			t.Fatalf("default policy: %+v", tp)
		}
	}
	// Settings out of the verifier's range are refused by verify.New.
	for _, s := range []policy.Settings{
		{ApprovalThreshold: 0, TTLRead: time.Second, TTLWrite: time.Second},
		{ApprovalThreshold: 1, Skew: 301 * time.Second, TTLRead: time.Second, TTLWrite: time.Second},
		{ApprovalThreshold: 1, MaxDepth: -1, TTLRead: time.Second, TTLWrite: time.Second},
		{ApprovalThreshold: 1, TTLRead: 0, TTLWrite: time.Second},
	} {
		if _, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), s.Options()...); err == nil {
			t.Errorf("settings %+v accepted", s)
		}
	}
}
