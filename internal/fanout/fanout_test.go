package fanout

import (
	"context"
	"errors"
	"testing"
)

func TestHub(t *testing.T) {
	h := New[int](2)
	ctx, cancel := context.WithCancel(t.Context())
	a, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(1)
	if v := <-a; v != 1 {
		t.Fatalf("a got %d", v)
	}
	if v := <-b; v != 1 {
		t.Fatalf("b got %d", v)
	}
	cancel()
	for range a { // closed once the context ends
	}
	h.Publish(2)
	h.Publish(3)
	h.Publish(4) // b overflows and is dropped
	<-b
	<-b
	if _, ok := <-b; ok {
		t.Fatal("overflowed subscriber not closed")
	}
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d", n)
	}
	c, _ := h.Subscribe(t.Context())
	h.Close()
	if _, ok := <-c; ok {
		t.Fatal("Close left a channel open")
	}
	if _, err := h.Subscribe(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if _, err := New[int](0).Subscribe(ctx); err == nil {
		t.Fatal("Subscribe with an ended context succeeded")
	}
}
