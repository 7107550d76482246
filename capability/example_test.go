package capability_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// exampleAgent returns a deterministic signer and its agent id (real agents use
// identity.Generate and key files).
func exampleAgent(name string) (*identity.KeySigner, string) {
	seed := sha256.Sum256([]byte(name))
	s := identity.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	return s, identity.AgentIDOf(s.Public())
}

func limit(n int64) *int64 { return &n }

// Alice grants Bob read and search; Bob passes read on to Carol; Carol's handoffs are
// checked against the chain.
func Example() {
	alice, aliceID := exampleAgent("alice")
	bob, bobID := exampleAgent("bob")
	carol, carolID := exampleAgent("carol")
	reg, _ := capability.NewStaticRegistry(map[string]string{
		aliceID: identity.PublicKeyPEM(alice.Public()),
		bobID:   identity.PublicKeyPEM(bob.Public()),
		carolID: identity.PublicKeyPEM(carol.Public()),
	})
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

	root, err := capability.Issue(alice, bobID,
		capability.Permissions{AllowedActions: []string{"read", "search"}, MaxToolCalls: limit(10)},
		nil, t0, t0.Add(time.Hour), capability.WithID("cap-root"))
	if err != nil {
		panic(err)
	}
	leaf, err := capability.Derive(root, bob, carolID,
		capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: limit(3)},
		nil, t0, t0.Add(30*time.Minute), capability.WithID("cap-leaf"))
	if err != nil {
		panic(err)
	}

	// Capabilities travel as tokens, root first.
	chain, err := capability.DecodeChain([]string{root.Token(), leaf.Token()}, capability.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println("ids:", capability.IDs(chain))
	fmt.Println("chain:", reason.Of(capability.VerifyChain(chain, reg, t0.Add(time.Minute)), ""))
	fmt.Println("read, 2 calls:", reason.Of(capability.Authorize(chain[1], []string{"read"}, limit(2)), ""))
	fmt.Println("search:", reason.Of(capability.Authorize(chain[1], []string{"search"}, limit(1)), ""))
	fmt.Println("read, unlimited:", reason.Of(capability.Authorize(chain[1], []string{"read"}, nil), ""))
	fmt.Println("at 12:45:", reason.Of(capability.VerifyChain(chain, reg, t0.Add(45*time.Minute)), ""))
	// Output:
	// ids: [cap-root cap-leaf]
	// chain: ok
	// read, 2 calls: ok
	// search: action_not_authorized
	// read, unlimited: action_not_authorized
	// at 12:45: capability_expired
}

// Derive refuses to widen its parent.
func ExampleDerive() {
	alice, _ := exampleAgent("alice")
	bob, bobID := exampleAgent("bob")
	_, carolID := exampleAgent("carol")
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	root, _ := capability.Issue(alice, bobID,
		capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: limit(10)},
		&capability.Constraints{RequiresHumanReview: true}, t0, t0.Add(time.Hour))

	try := func(what string, p capability.Permissions, c *capability.Constraints) {
		_, err := capability.Derive(root, bob, carolID, p, c, t0, t0.Add(time.Hour))
		fmt.Printf("%s: %s\n", what, reason.Of(err, ""))
	}
	try("narrower", capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: limit(1)}, nil)
	try("write", capability.Permissions{AllowedActions: []string{"read", "write"}, MaxToolCalls: limit(1)}, nil)
	try("unlimited calls", capability.Permissions{AllowedActions: []string{"read"}}, nil)
	try("review off", capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: limit(1)}, &capability.Constraints{})
	// Output:
	// narrower: ok
	// write: capability_escalation
	// unlimited calls: capability_escalation
	// review off: capability_escalation
}

// A token produced by the Python reference (testdata/vectors/capabilities/chain_depth1_valid.json).
func ExampleDecodeToken() {
	const token = "eyJjYXBhYmlsaXR5X2lkIjoiY2FwLXJvb3QiLCJjb25zdHJhaW50cyI6bnVsbCwiZGVsZWdhdGVkX3Blcm1pc3Npb25zIjp7ImFsbG93ZWRfYWN0aW9ucyI6WyJyZWFkIiwic2VhcmNoIiwic3VtbWFyaXplIl0sIm1heF90b29sX2NhbGxzIjoxMH0sImV4cGlyZXNfYXQiOiIyMDI2LTA0LTAxVDEzOjAwOjAwWiIsImlzc3VlZF9hdCI6IjIwMjYtMDQtMDFUMTI6MDA6MDBaIiwiaXNzdWVyX2FnZW50IjoiYWdlbnQ6bTZ3aVhlUlhldDN1Q0JPQiIsInBhcmVudF9jYXBhYmlsaXR5X2lkIjpudWxsLCJwdWJsaWNfa2V5IjoiLS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS1cbk1Db3dCUVlESzJWd0F5RUE2Y2NnOFFvZklOb0RNVWhIakd5ck5wb043R3JsZkRNNzZkVlBwMWFYdFdvPVxuLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tXG4iLCJzaWduYXR1cmUiOiJMMmtmVkFaRy9WSG1PTnkwS0x0TGxRSW9oOHhid3UyOEdTQU5tNVBhSXNPNUROWW91eFRHV2ZjTjg0cHBwSHY5aldvcmZPcjhVS0pUZExpZ0ZMdk9CQT09Iiwic2lnbmF0dXJlX2FsZ28iOiJFZDI1NTE5Iiwic3ViamVjdF9hZ2VudCI6ImFnZW50OmlhZWNieW4vWTZEdEQyaTEifQ"
	c, err := capability.DecodeToken(token, capability.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.CapabilityID, c.IssuerAgent, "->", c.SubjectAgent)
	fmt.Println(c.Permissions.AllowedActions, *c.Permissions.MaxToolCalls)
	fmt.Println("signature:", c.VerifySignature(), "canonical:", c.Token() == token)
	fmt.Printf("signed: %.60s…\n", c.SigningBytes())

	_, err = capability.DecodeToken(token+"=", capability.Limits{})
	fmt.Println("padded:", reason.Of(err, ""))
	// Output:
	// cap-root agent:m6wiXeRXet3uCBOB -> agent:iaecbyn/Y6DtD2i1
	// [read search summarize] 10
	// signature: true canonical: true
	// signed: {"capability_id": "cap-root", "constraints": null, "delegate…
	// padded: malformed_envelope
}

// The constraints in force at the leaf bind the packet too.
func ExampleAuthorizeConstraints() {
	alice, _ := exampleAgent("alice")
	_, bobID := exampleAgent("bob")
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	eu := "eu"
	root, _ := capability.Issue(alice, bobID, capability.Permissions{AllowedActions: []string{"read"}},
		&capability.Constraints{DataBoundary: &eu, RequiresHumanReview: true}, t0, t0.Add(time.Hour))
	chain := []*capability.Capability{root}

	fmt.Println(reason.Of(capability.AuthorizeConstraints(chain, &capability.Constraints{DataBoundary: &eu, RequiresHumanReview: true}), ""))
	fmt.Println(reason.Of(capability.AuthorizeConstraints(chain, nil), ""))
	// Output:
	// ok
	// action_not_authorized
}
