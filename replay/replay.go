// Package replay records replay keys (a hash of the sender's key fingerprint
// and the packet nonce) so that each accepted packet is accepted once.
//
// The verification pipeline calls [Store.Record] only
// for packets that passed every other check, with the packet's expiry plus the
// clock skew allowance, and rejects with replay_detected when the key is not
// fresh. Any store failure is reported as an error wrapping [ErrUnavailable]
// and the caller fails closed (store_unavailable): a replay store that cannot
// answer must never let a packet through.
//
// This package holds the interface and a bounded in-memory implementation
// ([Memory]); durable and shared implementations live in store/pebble and
// store/redis, and storetest holds the behaviour suite every implementation
// passes.
package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Store records replay keys. Record atomically records key until expiresAt and reports
// fresh=true; if key is already recorded and not yet expired it reports fresh=false.
// Any failure returns a non-nil error wrapping ErrUnavailable (callers fail closed).
//
// A key is live while now < expiresAt. Recording a key whose expiresAt is not
// after now stores nothing and reports whether the key is not live (a packet
// that far out of its window is rejected on time grounds anyway).
type Store interface {
	Record(ctx context.Context, key []byte, expiresAt time.Time) (fresh bool, err error)
}

// Peeker is the optional read-only side of a Store, for forensic (dry-run) verification:
// Seen reports whether key is recorded and live now, and records nothing. Every backend
// in this module implements it.
type Peeker interface {
	Seen(ctx context.Context, key []byte) (bool, error)
}

// ErrUnavailable is wrapped by every error a Store returns.
var ErrUnavailable = errors.New("replay: store unavailable")

// ErrInvalidKey reports a key that is empty or longer than MaxKeyLen. It wraps
// ErrUnavailable so that callers that only check ErrUnavailable still fail
// closed; it always indicates a bug in the caller.
var ErrInvalidKey = fmt.Errorf("%w: invalid key", ErrUnavailable)

// MaxKeyLen is the longest key a Store accepts. Keys are normally 32 bytes.
const MaxKeyLen = 256

// CheckKey returns an error wrapping ErrInvalidKey unless 1 <= len(key) <= MaxKeyLen.
// Backends call it first so that every backend rejects the same keys.
func CheckKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key is %d bytes, at most %d allowed", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// UnixNano returns t as Unix nanoseconds, clamped to the int64 range instead
// of overflowing for instants before 1678 or after 2262. Backends use it to
// order expiries.
func UnixNano(t time.Time) int64 {
	const maxSec = math.MaxInt64/int64(time.Second) - 1
	const minSec = math.MinInt64/int64(time.Second) + 1
	switch s := t.Unix(); {
	case s > maxSec:
		return math.MaxInt64
	case s < minSec:
		return math.MinInt64
	}
	return t.UnixNano()
}
