// Package revocation stores revocations of capabilities (by capability_id)
// and agents (by agent id), remembered denies of packets, and streams new revocations
// to watchers.
//
// The store only records ids and times. Cascading (a revoked capability
// revokes every capability derived from it) is computed by the
// verifier, which asks about every link of a chain; agent revocation
// likewise invalidates what the agent issued because the verifier asks about
// every issuer. Runtime revalidation cancels running work from
// a Watch stream instead of polling.
//
// Errors that mean "cannot answer" wrap [ErrUnavailable]; callers fail closed.
// This package holds the interface and an in-memory implementation
// ([Memory]); store/pebble and store/redis hold the durable and shared ones.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Kind says what an Entry revokes.
type Kind string

// The kinds of revocation.
const (
	KindCapability Kind = "capability" // Entry.ID is a capability_id
	KindAgent      Kind = "agent"      // Entry.ID is an agent id
	// KindDenied records a human's signed deny of one packet, so that the packet resent
	// without the deny is still refused. Entry.ID is the hex of the packet's replay key
	// (sender key and nonce), so a re-signing under the same nonce is refused too.
	KindDenied Kind = "denied"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool { return k == KindCapability || k == KindAgent || k == KindDenied }

// Entry is one revocation: what was revoked and when.
type Entry struct {
	Kind Kind
	ID   string
	At   time.Time
}

// Store records revocations. Implementations are safe for concurrent use.
type Store interface {
	// Revoke records e. The first revocation of (e.Kind, e.ID) stands: later
	// calls for the same pair succeed without changing it and are not
	// delivered to watchers. A zero e.At is replaced by the store's clock.
	Revoke(ctx context.Context, e Entry) error
	// Revoked reports whether (kind,id) is revoked (and when). Errors wrap ErrUnavailable (callers fail closed),
	// including while a shared backend's push subscription is down/stale.
	Revoked(ctx context.Context, kind Kind, id string) (Entry, bool, error)
	// Watch streams every revocation made after the call (by any node for shared backends) until ctx ends.
	//
	// The channel is closed when ctx ends or the store closes, and also when
	// the consumer falls too far behind; a channel closed while ctx is still
	// live means revocations may have been missed, so the consumer must
	// re-check what it guards with Revoked (and may Watch again).
	Watch(ctx context.Context) (<-chan Entry, error)
}

var (
	// ErrUnavailable is wrapped by errors that mean the store cannot answer.
	ErrUnavailable = errors.New("revocation: store unavailable")
	// ErrInvalid is wrapped by errors about a malformed kind or id.
	ErrInvalid = errors.New("revocation: invalid entry")
)

// MaxIDLen is the longest id a Store accepts, in bytes.
const MaxIDLen = 1024

// Check returns an error wrapping ErrInvalid unless kind is valid and id is
// non-empty UTF-8 of at most MaxIDLen bytes. Backends call it first so that
// every backend rejects the same input.
func Check(kind Kind, id string) error {
	switch {
	case !kind.Valid():
		return fmt.Errorf("%w: kind %q is not %q, %q or %q", ErrInvalid, kind, KindCapability, KindAgent, KindDenied)
	case id == "":
		return fmt.Errorf("%w: empty %s id", ErrInvalid, kind)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %s id is %d bytes, at most %d allowed", ErrInvalid, kind, len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %s id is not valid UTF-8", ErrInvalid, kind)
	}
	return nil
}
