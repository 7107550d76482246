// Package fanout delivers published values to a changing set of subscribers,
// each with its own bounded buffer, without ever blocking the publisher.
//
// A subscriber that falls more than its buffer behind is dropped: its channel
// is closed while its context is still live. Consumers of revocation streams
// treat that as "events may have been lost" and fall back to polling the store,
// which keeps a slow consumer from either stalling every node's revocation
// delivery or silently missing a revocation.
package fanout

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("fanout: hub closed")

// Hub fans values out to subscribers. The zero value is not usable; call New.
type Hub[T any] struct {
	mu     sync.Mutex
	buffer int
	subs   map[*subscriber[T]]struct{}
	closed bool
}

type subscriber[T any] struct {
	ch   chan T
	stop func() bool // stops the context.AfterFunc registration
}

// New returns a hub whose subscribers each buffer up to buffer values
// (at least 1).
func New[T any](buffer int) *Hub[T] {
	if buffer < 1 {
		buffer = 1
	}
	return &Hub[T]{buffer: buffer, subs: make(map[*subscriber[T]]struct{})}
}

// Subscribe returns a channel that receives every value published after the
// call. The channel is closed when ctx ends, when the hub is closed, or when
// the subscriber falls more than the buffer behind.
func (h *Hub[T]) Subscribe(ctx context.Context) (<-chan T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	s := &subscriber[T]{ch: make(chan T, h.buffer)}
	h.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.dropLocked(s)
	})
	return s.ch, nil
}

// Publish delivers v to every subscriber without blocking; subscribers whose
// buffer is full are dropped.
func (h *Hub[T]) Publish(v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- v:
		default:
			h.dropLocked(s)
		}
	}
}

// Len reports the number of live subscribers.
func (h *Hub[T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close closes every subscriber channel; later Subscribe calls fail.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.dropLocked(s)
	}
}

func (h *Hub[T]) dropLocked(s *subscriber[T]) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.stop()
	close(s.ch)
}
