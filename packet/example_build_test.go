package packet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Alice grants Bob a capability; Bob hands a task to Carol under it. Build picks the TTL
// of the effective risk, inherits the leaf's tool call limit and refuses what the chain
// does not allow.
func ExampleBuild() {
	signer := func(seed byte) *identity.KeySigner {
		return identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	}
	alice, bob, carol := signer(1), signer(2), signer(3)
	reg := registry.New()
	for _, s := range []*identity.KeySigner{alice, bob, carol} {
		reg.Add("", s.Public(), nil, nil)
	}
	bobID, carolID := identity.AgentIDOf(bob.Public()), identity.AgentIDOf(carol.Public())
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

	root, err := capability.Delegate(alice, bobID, []string{"read_tickets", "send_email"},
		capability.WithMaxToolCalls(10), capability.WithIssuedAt(now))
	if err != nil {
		panic(err)
	}
	leaf, err := capability.Delegate(bob, carolID, []string{"send_email"},
		capability.WithParent(root), capability.WithMaxToolCalls(3), capability.WithIssuedAt(now), capability.WithID("leaf-1"))
	if err != nil {
		panic(err)
	}

	env, err := packet.Build(bob, carolID, "Send the customer the refund confirmation",
		packet.WithCapabilities(root, leaf), packet.WithIssuedAt(now))
	if err != nil {
		panic(err)
	}
	p := env.Packet
	fmt.Println(p.Permissions.AllowedActions, *p.Permissions.MaxToolCalls, *p.RiskLevel, *p.TTLSeconds, len(env.Capabilities))

	_, err = packet.Build(bob, carolID, "Read everything",
		packet.WithCapabilities(root, leaf), packet.WithActions("read_tickets"), packet.WithIssuedAt(now))
	fmt.Println(errors.Is(err, packet.ErrInvalidHandoff), err)

	wire, _ := env.MarshalJSON()
	clock := func() time.Time { return now.Add(time.Second) }
	v, _ := verify.New(reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), verify.WithClock(clock), verify.WithRequireCapability())
	d := v.Verify(context.Background(), wire)
	fmt.Println(d.Decision, d.Reason)
	// Output:
	// [send_email] 3 write 120 2
	// true packet: permissions.allowed_actions: action "read_tickets" is not granted by the capability "leaf-1"
	// ACCEPT ok
}

func ExampleCheckAgentID() {
	for _, id := range []string{"agent:iaecbyn/Y6DtD2i1", "bob.key.pub", "agent:bob "} {
		fmt.Println(packet.CheckAgentID(id))
	}
	// Output:
	// <nil>
	// "bob.key.pub" does not look like an agent id (want agent:… as keygen prints)
	// "agent:bob " does not look like an agent id: it contains ' '
}
