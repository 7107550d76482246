package verify_test

import (
	"context"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func ExampleVerifier_Verify() {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	aliceKey, _ := identity.Generate()
	alice := identity.NewKeySigner(aliceKey)
	reg := registry.New()
	reg.Add("", alice.Public(), nil, nil)

	ttl, risk := int64(900), packet.RiskRead
	p := &packet.Packet{
		PacketID: "pkt-1", TaskID: "task-1", ToAgent: "agent:bob", Nonce: packet.NewID(),
		Intent:      "Summarize the open support tickets",
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
		IssuedAt:    canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
	p.Sign(alice, packet.Rule04)
	wire, _ := (&packet.Envelope{Packet: p}).MarshalJSON()

	clock := func() time.Time { return now } // the verifier and its replay store share a clock
	v, _ := verify.New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), verify.WithClock(clock))
	for range 2 {
		d := v.Verify(context.Background(), wire)
		fmt.Println(d.Decision, d.Reason)
	}
	// Output:
	// ACCEPT ok
	// REJECT replay_detected
}
