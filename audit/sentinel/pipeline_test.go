package sentinel_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/sentinel"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Rule: the rule names and cited records match what the real verifier writes to a real
// log: a replay, a packet beyond its capability, one issued in the future.
func TestRulesOverVerifierLog(t *testing.T) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	aliceKey, _ := identity.Generate()
	alice := identity.NewKeySigner(aliceKey)
	bobKey, _ := identity.Generate()
	bob := identity.NewKeySigner(bobKey)
	reg := registry.New()
	aliceID, _ := reg.Add("", alice.Public(), nil, nil)
	bobID, _ := reg.Add("", bob.Public(), nil, nil)

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), verify.WithClock(clock), verify.WithAudit(sink, "test"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(issued time.Time, actions []string, caps []*capability.Capability) []byte {
		ttl, risk := int64(900), packet.RiskRead
		p := &packet.Packet{
			PacketID: packet.NewID(), TaskID: "task-1", ToAgent: bobID, Nonce: packet.NewID(), Intent: "x",
			Permissions: packet.Permissions{AllowedActions: actions},
			IssuedAt:    canonical.TimestampOf(issued), ExpiresAt: canonical.TimestampOf(issued.Add(900 * time.Second)),
			RiskLevel: &risk, TTLSeconds: &ttl,
		}
		var tokens []string
		if len(caps) > 0 {
			tok := caps[len(caps)-1].Token()
			p.CapabilityToken = &tok
			for _, c := range caps {
				tokens = append(tokens, c.Token())
			}
		}
		if err := p.Sign(alice, packet.Rule04); err != nil {
			t.Fatal(err)
		}
		wire, err := (&packet.Envelope{Packet: p, Capabilities: tokens}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	verifyWant := func(wire []byte, want string) {
		t.Helper()
		if d := v.Verify(context.Background(), wire); string(d.Reason) != want {
			t.Fatalf("reason %s (%s), want %s", d.Reason, d.Detail, want)
		}
	}
	ok := mk(now, []string{"read"}, nil)
	verifyWant(ok, "ok")              // 1
	verifyWant(ok, "replay_detected") // 2, 3
	grant, err := capability.Issue(alice, bobID, capability.Permissions{AllowedActions: []string{"read"}}, nil, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	verifyWant(mk(now, []string{"read", "delete"}, []*capability.Capability{grant}), "action_not_authorized") // 4
	verifyWant(mk(now.Add(10*time.Minute), []string{"read"}, nil), "issued_in_future")                        // 5
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	l, err := audit.ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := sentinel.AnalyzeLog(l, sentinel.LogInfo{Records: l.Size(), Verified: true})
	got := map[string][]uint64{}
	for _, f := range rep.Findings {
		if f.Agent != aliceID {
			t.Errorf("finding %+v names agent %q, want %q", f, f.Agent, aliceID)
		}
		got[f.Rule] = f.Seqs
	}
	want := map[string][]uint64{
		sentinel.RuleReplay: {2, 3}, sentinel.RuleEscalation: {4}, sentinel.RuleIssuedInFuture: {5},
	}
	for rule, seqs := range want {
		if g := got[rule]; len(g) != len(seqs) || (len(g) > 0 && g[0] != seqs[0]) {
			t.Errorf("%s cites %v, want %v", rule, g, seqs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}
