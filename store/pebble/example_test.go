package pebble_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/store/pebble"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "trusthandoff-state")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	store, err := pebble.Open(dir, pebble.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	ctx := context.Background()

	key := []byte("sha256(fingerprint || nonce).....")
	fresh, err := store.Record(ctx, key, time.Now().Add(2*time.Minute)) // synced before it returns
	fmt.Println("first:", fresh, err)
	fresh, err = store.Record(ctx, key, time.Now().Add(2*time.Minute))
	fmt.Println("again:", fresh, err)

	_ = store.Revoke(ctx, revocation.Entry{Kind: revocation.KindAgent, ID: "agent:mallory"})
	_, revoked, err := store.Revoked(ctx, revocation.KindAgent, "agent:mallory")
	fmt.Println("revoked:", revoked, err)

	_, err = pebble.Open(dir, pebble.Config{}) // one Store per directory
	fmt.Println("second open locked:", err != nil)
	// Output:
	// first: true <nil>
	// again: false <nil>
	// revoked: true <nil>
	// second open locked: true
}
