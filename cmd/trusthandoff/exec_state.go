package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// onDemandState is a state directory that exec holds only while it uses it. The embedded
// store admits one process at a time, and exec may run for a long time (waiting for
// approvals, then running its command); holding the directory all along would lock out
// every 'verify' and 'revoke' on it. The directory is opened by the first store operation
// of a verification and closed by release, which exec calls once the verification is over
// (when the handoff starts waiting for approvals, after each approval is considered, and
// before the command starts). Every open re-reads the directory, so a revocation recorded
// by another process in between is seen by the next verification. A directory that cannot
// be opened fails the operation, and so the verification, with store_unavailable.
type onDemandState struct {
	flags stateFlags // with onDemand unset: opens the directory

	mu   sync.Mutex
	open *state // nil while released
}

var (
	_ replay.Store     = (*onDemandState)(nil)
	_ replay.Peeker    = (*onDemandState)(nil)
	_ revocation.Store = (*onDemandState)(nil)
)

// openOnDemand returns the state of directory dir, opened only on demand.
func openOnDemand(dir string, lockWait time.Duration) *state {
	s := &onDemandState{flags: stateFlags{dir: dir, lockWait: lockWait}}
	return &state{replay: s, revocations: s, close: s.release}
}

// use runs fn on the open directory, opening it first when it is released.
func (s *onDemandState) use(ctx context.Context, unavailableErr error, fn func(*state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		st, err := openState(ctx, &s.flags)
		if err != nil {
			if cause := errors.Unwrap(err); cause != nil {
				err = cause // drop the CLI's exit code wrapper
			}
			return fmt.Errorf("%w: %w", unavailableErr, err)
		}
		s.open = st
	}
	return fn(s.open)
}

// release closes the directory if it is open; the next operation opens it again.
func (s *onDemandState) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		return nil
	}
	err := s.open.Close()
	s.open = nil
	return err
}

// Record implements replay.Store.
func (s *onDemandState) Record(ctx context.Context, key []byte, expiresAt time.Time) (fresh bool, err error) {
	err = s.use(ctx, replay.ErrUnavailable, func(st *state) error {
		fresh, err = st.replay.Record(ctx, key, expiresAt)
		return err
	})
	return fresh, err
}

// Seen implements replay.Peeker (dry runs).
func (s *onDemandState) Seen(ctx context.Context, key []byte) (seen bool, err error) {
	err = s.use(ctx, replay.ErrUnavailable, func(st *state) error {
		pk, ok := st.replay.(replay.Peeker)
		if !ok {
			return fmt.Errorf("%w: the state directory cannot be read without recording", replay.ErrUnavailable)
		}
		seen, err = pk.Seen(ctx, key)
		return err
	})
	return seen, err
}

// Revoked implements revocation.Store.
func (s *onDemandState) Revoked(ctx context.Context, kind revocation.Kind, id string) (e revocation.Entry, revoked bool, err error) {
	err = s.use(ctx, revocation.ErrUnavailable, func(st *state) error {
		e, revoked, err = st.revocations.Revoked(ctx, kind, id)
		return err
	})
	return e, revoked, err
}

// Revoke implements revocation.Store.
func (s *onDemandState) Revoke(ctx context.Context, e revocation.Entry) error {
	return s.use(ctx, revocation.ErrUnavailable, func(st *state) error { return st.revocations.Revoke(ctx, e) })
}

// Watch implements revocation.Store. It always fails: revocations made by other processes
// on a directory are not pushed to this one.
func (s *onDemandState) Watch(context.Context) (<-chan revocation.Entry, error) {
	return nil, fmt.Errorf("%w: a state directory pushes no revocations to other processes; use --redis", revocation.ErrUnavailable)
}
