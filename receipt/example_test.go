package receipt_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// exampleWorld: planner hands a task to researcher; both are registered.
func exampleWorld() (planner, researcher identity.Signer, reg *registry.Registry, env *packet.Envelope) {
	pk, _ := identity.Generate()
	rk, _ := identity.Generate()
	planner, researcher = identity.NewKeySigner(pk), identity.NewKeySigner(rk)
	reg = registry.New()
	reg.Add("", planner.Public(), nil, nil)
	rid, _ := reg.Add("", researcher.Public(), nil, nil)
	env, err := packet.Build(planner, rid, "collect sources", packet.WithActions("search_web"), packet.WithTTL(15*time.Minute))
	if err != nil {
		panic(err)
	}
	return planner, researcher, reg, env
}

func ExampleSign() {
	_, researcher, _, env := exampleWorld()
	now := time.Now()
	r, err := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{
		Status: receipt.StatusOK, Outcome: []byte(`{"sources":3}`),
		StartedAt: now.Add(-2 * time.Second), FinishedAt: now,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Version, r.Status, r.Executor == env.Packet.ToAgent)
	fmt.Println(receipt.FormatHash(r.OutcomeHash) == receipt.FormatHash(receipt.HashBytes([]byte(`{"sources":3}`))))
	// Output:
	// trusthandoff/receipt/v1 OK true
	// true
}

func ExampleVerifier_Verify() {
	_, researcher, reg, env := exampleWorld()
	now := time.Now()
	r, _ := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{
		Status: receipt.StatusOK, Outcome: []byte("three sources"), StartedAt: now, FinishedAt: now,
	})
	v, _ := receipt.NewVerifier(reg, receipt.WithReplay(replay.NewMemory(replay.MemoryConfig{})))
	ctx := context.Background()

	fmt.Println(v.Verify(ctx, r, env, receipt.VerifyOptions{Outcome: []byte("three sources")}))
	// Someone swaps the result: the receipt does not vouch for it.
	err := v.Verify(ctx, r, env, receipt.VerifyOptions{DryRun: true, Outcome: []byte("no sources")})
	fmt.Println(reason.Of(err, reason.OK), errors.Is(err, receipt.ErrOutcomeMismatch))
	// The same receipt again.
	fmt.Println(reason.Of(v.Verify(ctx, r, env, receipt.VerifyOptions{}), reason.OK))
	// Output:
	// <nil>
	// outcome_mismatch true
	// replay_detected
}

func ExampleParse() {
	_, researcher, _, env := exampleWorld()
	now := time.Now()
	r, _ := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{Status: receipt.StatusError, Reason: []byte("timeout upstream"), StartedAt: now, FinishedAt: now})
	wire, _ := r.Marshal()
	back, err := receipt.Parse(wire)
	fmt.Println(err, back.Status, back.ReasonHash != nil)
	_, err = receipt.Parse([]byte(`{"version":"trusthandoff/receipt/v1","extra":true}`))
	fmt.Println(reason.Of(err, reason.OK))
	// Output:
	// <nil> ERROR true
	// malformed_envelope
}

func ExampleReceipt_Digest() {
	_, researcher, reg, env := exampleWorld()
	now := time.Now()
	first, _ := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{Status: receipt.StatusOK, Outcome: []byte("notes"), StartedAt: now, FinishedAt: now})
	d, _ := first.Digest()
	// A later result built on the first one names it by digest.
	second, _ := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{Status: receipt.StatusOK, Outcome: []byte("report"), StartedAt: now, FinishedAt: now, DependsOn: [][32]byte{d}})
	v, _ := receipt.NewVerifier(reg)
	resolve := func(x [32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return first, env, x == d }
	fmt.Println(v.Verify(context.Background(), second, env, receipt.VerifyOptions{Dependencies: resolve}))
	fmt.Println(reason.Of(v.Verify(context.Background(), second, env, receipt.VerifyOptions{}), reason.OK))
	// Output:
	// <nil>
	// dependency_invalid
}

func ExampleRun() {
	_, researcher, reg, env := exampleWorld()
	wire, _ := env.MarshalJSON()
	revocations := revocation.NewMemory(revocation.MemoryConfig{})
	pipeline, _ := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), verify.WithRevocations(revocations))
	g, _ := gate.New(pipeline, revocations)

	res, r, err := receipt.Run(context.Background(), g, researcher, wire, func(ctx context.Context, h *verify.Decision) ([]byte, error) {
		return []byte("found 3 sources for: " + h.Envelope.Packet.Intent), nil
	})
	fmt.Println(err, r.Status, string(res.Outcome))

	// Delivered again: refused by the gate, and the receipt says so.
	res, r, err = receipt.Run(context.Background(), g, researcher, wire, func(context.Context, *verify.Decision) ([]byte, error) { return nil, nil })
	fmt.Println(errors.Is(err, gate.ErrRejected), r.Status, res.Decision.Reason, r.ReasonHash != nil)
	// Output:
	// <nil> OK found 3 sources for: collect sources
	// true REJECTED replay_detected true
}
