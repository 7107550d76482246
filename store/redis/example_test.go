package redis_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/store/redis"
)

// Open a shared store for one verifier of many. Not run: it needs a Redis
// server; the package tests start their own.
func ExampleOpen() {
	store, err := redis.Open(redis.Config{
		Addr:         "127.0.0.1:6379",
		Prefix:       "prod:",
		WaitReplicas: 1, // a nonce counts once one replica has it
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := store.Ready(ctx); err != nil { // revocation cache synced
		fmt.Println(err)
		return
	}

	fresh, err := store.Record(ctx, []byte("sha256(fingerprint || nonce)....."), time.Now().Add(2*time.Minute))
	switch {
	case errors.Is(err, replay.ErrUnavailable):
		fmt.Println("store_unavailable: reject") // fail closed
	case !fresh:
		fmt.Println("replay_detected")
	}

	// Revocations made by any node arrive here.
	revocations, err := store.Watch(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for e := range revocations {
		if e.Kind == revocation.KindAgent {
			fmt.Println("cancel work from", e.ID)
		}
	}
}
