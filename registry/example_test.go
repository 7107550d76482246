package registry_test

import (
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

func ExampleRegistry_Rotate() {
	oldKey, _ := identity.Generate()
	newKey, _ := identity.Generate()
	oldPub, newPub := identity.NewKeySigner(oldKey).Public(), identity.NewKeySigner(newKey).Public()
	reg := registry.New()
	id, _ := reg.Add("", oldPub, nil, nil)

	rotatedAt := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	reg.Rotate(id, newPub, rotatedAt, 30*time.Second)

	for _, at := range []time.Duration{-time.Minute, 10 * time.Second, time.Minute} {
		b, err := reg.Resolve(id, identity.PublicKeyPEM(oldPub), rotatedAt.Add(at))
		fmt.Printf("old key at %v: %s overlap=%v\n", at, reason.Of(err, ""), b.OverlapUsed)
	}
	// Output:
	// old key at -1m0s: ok overlap=false
	// old key at 10s: ok overlap=true
	// old key at 1m0s: public_key_mismatch overlap=false
}
