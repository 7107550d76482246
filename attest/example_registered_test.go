package attest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// Bob rotated his key and attests with the new one under his registered id; the delegator
// resolves the signer in its registry, expects Bob, and checks the revocation store.
func ExampleVerifyRegistered() {
	key := func(seed byte) *identity.KeySigner {
		return identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	}
	bob, bob2, carol := key(1), key(2), key(3)
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	reg := registry.New()
	bobID, _ := reg.Add("", bob.Public(), nil, nil)
	reg.Add("", carol.Public(), nil, nil)
	reg.Rotate(bobID, bob2.Public(), now.Add(-time.Hour), 30*time.Second)
	revoked := revocation.NewMemory(revocation.MemoryConfig{})

	result, _ := canonical.Parse([]byte(`{"sent":true}`), canonical.Limits{})
	a, err := attest.Create(bob2, "pkt-42", attest.StatusOK, result, nil, now, attest.WithSignedBy(bobID))
	if err != nil {
		panic(err)
	}
	opts := []attest.Option{attest.WithExpectedSigner(bobID), attest.WithRevocations(revoked)}
	signer, err := attest.VerifyRegistered(context.Background(), a, reg, now, opts...)
	fmt.Println(signer.AgentID == bobID, err)

	// An attestation from Carol where Bob's was expected.
	c, _ := attest.Create(carol, "pkt-42", attest.StatusOK, result, nil, now)
	_, err = attest.VerifyRegistered(context.Background(), c, reg, now, opts...)
	fmt.Println(errors.Is(err, attest.ErrUnexpectedSigner), reason.Of(err, ""))

	// Once Bob is revoked, his attestations are refused.
	revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: bobID, At: now})
	_, err = attest.VerifyRegistered(context.Background(), a, reg, now, opts...)
	fmt.Println(errors.Is(err, attest.ErrSignerRevoked), reason.Of(err, ""))
	// Output:
	// true <nil>
	// true public_key_mismatch
	// true agent_revoked
}
