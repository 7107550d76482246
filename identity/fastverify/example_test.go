package fastverify_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// Opt a registry into precomputed keys: every registered key, now and later, verifies
// through fastverify with crypto/ed25519's decisions.
func ExampleNew() {
	key, _ := identity.Generate()
	pub := key.Public().(ed25519.PublicKey)
	reg := registry.New()
	id, _ := reg.Add("", pub, nil, nil)
	if err := reg.SetVerifierFactory(fastverify.New); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reg.KeyValid(id, pub, time.Now()))
	v, _ := fastverify.New(pub)
	msg := []byte("handoff")
	fmt.Println(v.Verify(msg, ed25519.Sign(key, msg)), v.Verify([]byte("other"), ed25519.Sign(key, msg)))
	// Output:
	// true
	// true false
}
