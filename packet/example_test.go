package packet_test

import (
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

func ExamplePacket_Sign() {
	key, _ := identity.Generate()
	signer := identity.NewKeySigner(key)
	issued := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	ttl, risk := int64(900), packet.RiskRead
	p := &packet.Packet{
		PacketID: "pkt-1", TaskID: "task-1", ToAgent: "agent:iaecbyn/Y6DtD2i1", Nonce: packet.NewID(),
		Intent:      "Summarize the open support tickets",
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
		IssuedAt:    canonical.TimestampOf(issued), ExpiresAt: canonical.TimestampOf(issued.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
	if err := p.Sign(signer, packet.Rule04); err != nil {
		panic(err)
	}
	wire, _ := (&packet.Envelope{Packet: p}).MarshalJSON()

	// The receiver: strict parse, signature, time window.
	env, err := packet.ParseEnvelope(wire, packet.Limits{})
	if err != nil {
		panic(err)
	}
	rule, err := env.Packet.VerifySignature(signer.Public())
	fmt.Println(rule, err)
	fmt.Println(packet.ValidateTime(env.Packet, issued.Add(30*time.Second), &packet.TimePolicy{Skew: packet.DefaultSkew, Strict: true}))
	// Output:
	// 0.4 <nil>
	// <nil>
}
