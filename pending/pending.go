// Package pending holds handoffs that wait for human approval.
//
// When a packet needs approval, a service that holds it for reviewers stores its envelope
// here under an id (the packet digest, so that one id names one envelope),
// lists what is waiting for reviewers, and releases and deletes the item when
// enough signed approvals arrive. Items expire with the packet: an expired
// item is neither returned nor listed.
//
// This package holds the interface and an in-memory implementation
// ([Memory]); store/pebble and store/redis hold the durable and shared ones.
package pending

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Item is one pending handoff.
type Item struct {
	ID        string
	Envelope  []byte
	ExpiresAt time.Time
}

// Store holds pending handoffs. Implementations are safe for concurrent use
// and copy envelopes in and out, so callers may reuse their slices.
type Store interface {
	// Put stores envelope under id until expiresAt, replacing any item with
	// that id. expiresAt must be after the store's clock.
	Put(ctx context.Context, id string, envelope []byte, expiresAt time.Time) error
	// Get returns the envelope stored under id, if it has not expired.
	Get(ctx context.Context, id string) ([]byte, bool, error)
	// List returns the items that have not expired, sorted by id.
	List(ctx context.Context) ([]Item, error)
	// Delete removes the item stored under id; deleting a missing id is not an error.
	Delete(ctx context.Context, id string) error
}

var (
	// ErrUnavailable is wrapped by errors that mean the store cannot answer.
	ErrUnavailable = errors.New("pending: store unavailable")
	// ErrInvalid is wrapped by errors about a malformed id, an empty or
	// oversized envelope, or an expiry that is not in the future.
	ErrInvalid = errors.New("pending: invalid item")
)

const (
	// MaxIDLen is the longest id a Store accepts, in bytes.
	MaxIDLen = 1024
	// MaxEnvelopeLen is the largest envelope a Store accepts, in bytes.
	MaxEnvelopeLen = 1 << 20
)

// CheckID returns an error wrapping ErrInvalid unless id is non-empty UTF-8 of
// at most MaxIDLen bytes.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty id", ErrInvalid)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: id is %d bytes, at most %d allowed", ErrInvalid, len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: id is not valid UTF-8", ErrInvalid)
	}
	return nil
}

// CheckPut validates the arguments of Put against the store's clock reading now.
// Backends call it first so that every backend rejects the same input.
func CheckPut(id string, envelope []byte, expiresAt, now time.Time) error {
	if err := CheckID(id); err != nil {
		return err
	}
	switch {
	case len(envelope) == 0:
		return fmt.Errorf("%w: empty envelope", ErrInvalid)
	case len(envelope) > MaxEnvelopeLen:
		return fmt.Errorf("%w: envelope is %d bytes, at most %d allowed", ErrInvalid, len(envelope), MaxEnvelopeLen)
	case !expiresAt.After(now):
		return fmt.Errorf("%w: expiry %s is not after now (%s)", ErrInvalid,
			expiresAt.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
