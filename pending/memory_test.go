package pending_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/storetest"
)

func TestMemorySuite(t *testing.T) {
	storetest.RunPending(t, func(t *testing.T) storetest.PendingEnv {
		c := storetest.NewClock(storetest.Epoch())
		return storetest.PendingEnv{Store: pending.NewMemory(pending.MemoryConfig{Now: c.Now}), Clock: c}
	})
}

func TestMemoryBounded(t *testing.T) {
	c := storetest.NewClock(storetest.Epoch())
	m := pending.NewMemory(pending.MemoryConfig{MaxItems: 2, Now: c.Now})
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if err := m.Put(ctx, id, []byte("e"), c.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Put(ctx, "c", []byte("e"), c.Now().Add(time.Second)); !errors.Is(err, pending.ErrUnavailable) {
		t.Fatalf("Put when full: %v, want ErrUnavailable", err)
	}
	if err := m.Put(ctx, "a", []byte("e2"), c.Now().Add(time.Second)); err != nil {
		t.Fatalf("replacing an item when full: %v", err)
	}
	c.Advance(time.Second)
	if err := m.Put(ctx, "c", []byte("e"), c.Now().Add(time.Second)); err != nil {
		t.Fatalf("Put after expiry freed room: %v", err)
	}
}

func ExampleMemory() {
	ctx := context.Background()
	store := pending.NewMemory(pending.MemoryConfig{})
	exp := time.Now().Add(2 * time.Minute)
	_ = store.Put(ctx, "sha256:bbb", []byte(`{"packet":"b"}`), exp)
	_ = store.Put(ctx, "sha256:aaa", []byte(`{"packet":"a"}`), exp)
	items, _ := store.List(ctx)
	for _, it := range items {
		fmt.Println(it.ID, string(it.Envelope))
	}
	_ = store.Delete(ctx, "sha256:aaa") // released after approval
	_, ok, _ := store.Get(ctx, "sha256:aaa")
	fmt.Println(ok)
	// Output:
	// sha256:aaa {"packet":"a"}
	// sha256:bbb {"packet":"b"}
	// false
}
