package gate_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// exampleHandoff signs a read handoff from a new registered agent, issued now, and returns
// its wire envelope, the packet, and a gate in front of a verifier over the same stores.
func exampleHandoff(reviewed bool) ([]byte, *packet.Packet, *gate.Gate, *registry.Registry, revocation.Store) {
	key, _ := identity.Generate()
	alice := identity.NewKeySigner(key)
	reg := registry.New()
	reg.Add("", alice.Public(), nil, nil)

	now := time.Now()
	ttl, risk := int64(900), packet.RiskRead
	p := &packet.Packet{
		PacketID: "pkt-1", TaskID: "task-1", ToAgent: "agent:bob", Nonce: packet.NewID(),
		Intent:      "Summarize the open support tickets",
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
		IssuedAt:    canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
	if reviewed {
		p.Constraints = &packet.Constraints{RequiresHumanReview: true}
	}
	p.Sign(alice, packet.Rule04)
	wire, _ := (&packet.Envelope{Packet: p}).MarshalJSON()

	revocations := revocation.NewMemory(revocation.MemoryConfig{})
	v, _ := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), verify.WithRevocations(revocations))
	g, err := gate.New(v, revocations)
	if err != nil {
		panic(err)
	}
	return wire, p, g, reg, revocations
}

func ExampleGate_Execute() {
	wire, _, g, _, _ := exampleHandoff(false)
	d, err := g.Execute(context.Background(), wire, func(ctx context.Context, h *verify.Decision) error {
		// ctx is cancelled the moment the handoff expires or is revoked.
		fmt.Println("running:", h.Envelope.Packet.Intent)
		return nil
	})
	fmt.Println(d.Decision, d.Reason, err)

	// The same envelope again: fn does not run.
	d, err = g.Execute(context.Background(), wire, func(context.Context, *verify.Decision) error { return nil })
	fmt.Println(d.Decision, d.Reason, errors.Is(err, gate.ErrRejected))
	// Output:
	// running: Summarize the open support tickets
	// ACCEPT ok <nil>
	// REJECT replay_detected true
}

func ExampleGate_Submit() {
	wire, p, g, reg, _ := exampleHandoff(true)
	olgaKey, _ := identity.Generate()
	olga := identity.NewKeySigner(olgaKey)
	reg.Add("", olga.Public(), []string{registry.RoleApprover}, nil)

	done := make(chan *verify.Decision)
	go func() {
		d, _ := g.Execute(context.Background(), wire, func(context.Context, *verify.Decision) error {
			fmt.Println("running after approval")
			return nil
		})
		done <- d
	}()

	// A reviewer lists what waits, and approves it by its packet digest.
	var pending []gate.PendingHandoff
	for len(pending) == 0 {
		time.Sleep(time.Millisecond)
		pending = g.Pending()
	}
	fmt.Println("waiting:", pending[0].PacketID, pending[0].Intent)
	digest, _ := approval.Digest(p, packet.Rule04)
	a, _ := approval.New(olga, digest, approval.Approve, time.Now(), time.Hour, "looks fine")
	if err := g.Submit(context.Background(), a); err != nil {
		fmt.Println(err)
	}
	d := <-done
	fmt.Println(d.Decision, d.Reason)
	// Output:
	// waiting: pkt-1 Summarize the open support tickets
	// running after approval
	// ACCEPT ok
}

func ExampleCause() {
	wire, p, g, _, revocations := exampleHandoff(false)
	_, err := g.Execute(context.Background(), wire, func(ctx context.Context, _ *verify.Decision) error {
		// Another node revokes the sender while the work runs.
		revocations.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: p.FromAgent})
		<-ctx.Done()
		fmt.Println("cancelled:", reason.Of(gate.Cause(ctx), reason.OK))
		return ctx.Err()
	})
	fmt.Println(errors.Is(err, gate.ErrInvalidated), reason.Of(err, reason.OK))
	// Output:
	// cancelled: agent_revoked
	// true agent_revoked
}

func ExampleGate_Revalidate() {
	wire, p, g, _, revocations := exampleHandoff(false)
	d, _ := g.Execute(context.Background(), wire, func(context.Context, *verify.Decision) error { return nil })
	fmt.Println(g.Revalidate(context.Background(), d))
	revocations.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: p.FromAgent})
	fmt.Println(reason.Of(g.Revalidate(context.Background(), d), reason.OK))
	// Output:
	// <nil>
	// agent_revoked
}
