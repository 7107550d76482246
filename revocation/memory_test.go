package revocation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

func TestMemorySuite(t *testing.T) {
	storetest.RunRevocation(t, func(t *testing.T) storetest.RevocationEnv {
		c := storetest.NewClock(storetest.Epoch())
		m := revocation.NewMemory(revocation.MemoryConfig{Now: c.Now})
		return storetest.RevocationEnv{Store: m, Peer: m, Clock: c}
	})
}

func TestMemorySlowWatcherIsClosed(t *testing.T) {
	m := revocation.NewMemory(revocation.MemoryConfig{WatchBuffer: 2})
	ch, err := m.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := m.Revoke(t.Context(), revocation.Entry{Kind: revocation.KindAgent, ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Two buffered entries, then the close that tells the consumer it fell behind.
	for range 2 {
		if _, ok := <-ch; !ok {
			t.Fatal("channel closed before the buffered entries")
		}
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after the watcher fell behind")
	}
}

func ExampleMemory() {
	ctx := context.Background()
	store := revocation.NewMemory(revocation.MemoryConfig{})
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := store.Revoke(ctx, revocation.Entry{Kind: revocation.KindCapability, ID: "cap-42", At: at}); err != nil {
		fmt.Println(err)
		return
	}
	e, revoked, err := store.Revoked(ctx, revocation.KindCapability, "cap-42")
	fmt.Println(revoked, e.At.Format(time.RFC3339), err)
	_, revoked, err = store.Revoked(ctx, revocation.KindAgent, "cap-42")
	fmt.Println(revoked, err)
	// Output:
	// true 2030-01-01T00:00:00Z <nil>
	// false <nil>
}
