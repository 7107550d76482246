package bundle_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// A planner hands a task to a researcher, which returns its result with a signed receipt;
// the bundle of that one-step workflow verifies offline, and a bundle whose outcome was
// changed does not. (This bundle carries no audit log: WithoutAudit.)
func Example() {
	key := func(seed byte) *identity.KeySigner {
		return identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	}
	planner, researcher := key(1), key(2)
	reg := registry.New()
	reg.Add("", planner.Public(), nil, nil)
	researcherID, _ := reg.Add("", researcher.Public(), nil, nil)

	issued := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	env, err := packet.Build(planner, researcherID, "Research the market",
		packet.WithActions("search_web"), packet.WithIssuedAt(issued), packet.WithTaskID("wf-1"))
	if err != nil {
		panic(err)
	}
	outcome := []byte(`{"findings":["a","b"]}`)
	r, err := receipt.Sign(researcher, "", env.Packet, packet.Rule04, receipt.Params{
		Status: receipt.StatusOK, Outcome: outcome,
		StartedAt: issued.Add(2 * time.Second), FinishedAt: issued.Add(5 * time.Second),
	})
	if err != nil {
		panic(err)
	}
	envJSON, _ := env.MarshalJSON()
	receiptJSON, _ := r.Marshal()

	b, err := bundle.Create(bundle.Workflow{Kind: bundle.ByTaskID, ID: "wf-1"}, bundle.Input{
		Envelopes: [][]byte{envJSON}, Receipts: [][]byte{receiptJSON}, Outcomes: [][]byte{outcome},
		Now: issued.Add(time.Hour),
	})
	if err != nil {
		panic(err)
	}
	rep, err := bundle.Verify(context.Background(), b, reg, bundle.WithoutAudit())
	fmt.Println("verified:", rep.OK, err)
	s := rep.Steps[0]
	fmt.Println("step 1:", s.Decision, s.Status, "verified as of", s.AtSource)

	b.Steps[0].Outcome = []byte(`{"findings":["forged"]}`)
	_, err = bundle.Verify(context.Background(), b, reg, bundle.WithoutAudit())
	var se *bundle.StepError
	if errors.As(err, &se) {
		fmt.Println("tampered: step", se.Step, se.Problem, se.Reason)
	}
	// Output:
	// verified: true <nil>
	// step 1: ACCEPT OK verified as of receipt
	// tampered: step 1 outcome_mismatch outcome_mismatch
}
