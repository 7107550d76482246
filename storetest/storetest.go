// Package storetest is the behaviour suite that every replay, revocation and
// pending store passes: the memory stores, store/pebble and store/redis run
// the same cases.
//
// Time: a backend whose clock can be injected hands the suite a *Clock and
// the suite moves time by hand, checking expiry to the nanosecond. A backend
// on real time (Redis expires keys itself) passes a nil Clock; the suite then
// uses short TTLs (200 ms) and polls, bounded, for expiry.
package storetest

import (
	"sync"
	"testing"
	"time"
)

// Clock is a manually advanced clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's reading; pass it as a store's Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Epoch returns a convenient start for a Clock in tests.
func Epoch() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC) }

const (
	realTTL      = 200 * time.Millisecond // TTL used on real-time backends
	waitDeadline = 5 * time.Second        // bound on any wait for an asynchronous effect
	pollInterval = 10 * time.Millisecond
)

// now reads clock c, or real time when c is nil.
func now(c *Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}

// Eventually polls cond every 10 ms until it reports true, failing t after
// timeout. cond's error fails t at once.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
