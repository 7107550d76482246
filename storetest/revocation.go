package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// RevocationEnv is one fresh revocation store under test.
type RevocationEnv struct {
	Store revocation.Store
	// Peer is a second handle on the same backend, as another node would
	// hold; single-process backends pass Store again.
	Peer revocation.Store
	// Clock is the store's clock, or nil when the store runs on real time.
	Clock *Clock
}

// RunRevocation runs the revocation behaviour suite. open is called once per
// case and must return empty stores, ready to answer.
func RunRevocation(t *testing.T, open func(t *testing.T) RevocationEnv) {
	cases := []struct {
		name string
		run  func(t *testing.T, env RevocationEnv)
	}{
		{"RevokeThenRevoked", revRevokeThenRevoked},
		{"KindsSeparate", revKindsSeparate},
		{"FirstRevocationStands", revFirstStands},
		{"ZeroAtUsesClock", revZeroAt},
		{"Invalid", revInvalid},
		{"PeerSeesRevocation", revPeerSees},
		{"WatchDeliversToPeer", revWatchDelivers},
		{"WatchOnlyNewRevocations", revWatchOnlyNew},
		{"WatchClosesWithContext", revWatchCloses},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

func at(env RevocationEnv) time.Time { return now(env.Clock).Add(-time.Second).Round(0) }

func mustRevoke(t *testing.T, s revocation.Store, e revocation.Entry) {
	t.Helper()
	if err := s.Revoke(t.Context(), e); err != nil {
		t.Fatalf("Revoke(%+v): %v", e, err)
	}
}

func checkRevoked(t *testing.T, s revocation.Store, kind revocation.Kind, id string, want *revocation.Entry) {
	t.Helper()
	got, ok, err := s.Revoked(t.Context(), kind, id)
	if err != nil {
		t.Fatalf("Revoked(%s, %q): %v", kind, id, err)
	}
	switch {
	case want == nil && ok:
		t.Fatalf("Revoked(%s, %q) = %+v, want not revoked", kind, id, got)
	case want != nil && !ok:
		t.Fatalf("Revoked(%s, %q): not revoked, want %+v", kind, id, *want)
	case want != nil && !sameEntry(got, *want):
		t.Fatalf("Revoked(%s, %q) = %+v, want %+v", kind, id, got, *want)
	}
}

func sameEntry(a, b revocation.Entry) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.At.Equal(b.At)
}

func revRevokeThenRevoked(t *testing.T, env RevocationEnv) {
	e := revocation.Entry{Kind: revocation.KindCapability, ID: "cap-1", At: at(env)}
	checkRevoked(t, env.Store, e.Kind, e.ID, nil)
	mustRevoke(t, env.Store, e)
	checkRevoked(t, env.Store, e.Kind, e.ID, &e)
	checkRevoked(t, env.Store, e.Kind, "cap-2", nil)
	checkRevoked(t, env.Store, e.Kind, "cap-1 ", nil)
	// Ids with separators and non-ASCII text are stored as they are.
	for _, id := range []string{"a:b", "agent/with/slashes", "ünïcode", strings.Repeat("x", revocation.MaxIDLen)} {
		e := revocation.Entry{Kind: revocation.KindAgent, ID: id, At: at(env)}
		mustRevoke(t, env.Store, e)
		checkRevoked(t, env.Store, e.Kind, e.ID, &e)
	}
}

func revKindsSeparate(t *testing.T, env RevocationEnv) {
	e := revocation.Entry{Kind: revocation.KindAgent, ID: "x", At: at(env)}
	mustRevoke(t, env.Store, e)
	checkRevoked(t, env.Store, revocation.KindAgent, "x", &e)
	checkRevoked(t, env.Store, revocation.KindCapability, "x", nil)
	checkRevoked(t, env.Store, revocation.KindDenied, "x", nil)
	// A remembered deny is its own kind, seen by peers like any revocation.
	d := revocation.Entry{Kind: revocation.KindDenied, ID: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", At: at(env)}
	mustRevoke(t, env.Store, d)
	checkRevoked(t, env.Store, revocation.KindDenied, d.ID, &d)
	checkRevoked(t, env.Store, revocation.KindAgent, d.ID, nil)
	Eventually(t, waitDeadline, "peer sees the deny", func() (bool, error) {
		_, ok, err := env.Peer.Revoked(t.Context(), d.Kind, d.ID)
		return ok, err
	})
}

func revFirstStands(t *testing.T, env RevocationEnv) {
	first := revocation.Entry{Kind: revocation.KindCapability, ID: "c", At: at(env)}
	mustRevoke(t, env.Store, first)
	for _, d := range []time.Duration{-time.Hour, time.Hour} {
		again := first
		again.At = first.At.Add(d)
		mustRevoke(t, env.Store, again)
		checkRevoked(t, env.Store, first.Kind, first.ID, &first)
	}
}

func revZeroAt(t *testing.T, env RevocationEnv) {
	before := now(env.Clock)
	mustRevoke(t, env.Store, revocation.Entry{Kind: revocation.KindAgent, ID: "a"})
	after := now(env.Clock)
	got, ok, err := env.Store.Revoked(t.Context(), revocation.KindAgent, "a")
	if err != nil || !ok {
		t.Fatalf("Revoked = %v, %v", ok, err)
	}
	if got.At.Before(before) || got.At.After(after) {
		t.Fatalf("At = %s, want the store's clock, between %s and %s", got.At, before, after)
	}
}

func revInvalid(t *testing.T, env RevocationEnv) {
	cases := []struct {
		kind revocation.Kind
		id   string
	}{
		{"", "x"}, {"Agent", "x"}, {"capabilities", "x"},
		{revocation.KindAgent, ""},
		{revocation.KindAgent, "\xff"},
		{revocation.KindCapability, strings.Repeat("x", revocation.MaxIDLen+1)},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%.10q", c.kind, c.id), func(t *testing.T) {
			err := env.Store.Revoke(t.Context(), revocation.Entry{Kind: c.kind, ID: c.id, At: at(env)})
			if !errors.Is(err, revocation.ErrInvalid) {
				t.Errorf("Revoke: %v, want an error wrapping ErrInvalid", err)
			}
			if _, ok, err := env.Store.Revoked(t.Context(), c.kind, c.id); !errors.Is(err, revocation.ErrInvalid) || ok {
				t.Errorf("Revoked = %v, %v; want an error wrapping ErrInvalid", ok, err)
			}
		})
	}
}

func revPeerSees(t *testing.T, env RevocationEnv) {
	e := revocation.Entry{Kind: revocation.KindCapability, ID: "seen-by-peer", At: at(env)}
	mustRevoke(t, env.Store, e)
	Eventually(t, waitDeadline, "peer sees the revocation", func() (bool, error) {
		got, ok, err := env.Peer.Revoked(t.Context(), e.Kind, e.ID)
		if ok && !sameEntry(got, e) {
			return false, fmt.Errorf("peer has %+v, want %+v", got, e)
		}
		return ok, err
	})
}

// receive returns the next entry from ch, failing t after waitDeadline.
func receive(t *testing.T, ch <-chan revocation.Entry) revocation.Entry {
	t.Helper()
	timer := time.NewTimer(waitDeadline)
	defer timer.Stop()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return e
	case <-timer.C:
		t.Fatalf("no revocation delivered within %v", waitDeadline)
	}
	return revocation.Entry{}
}

func revWatchDelivers(t *testing.T, env RevocationEnv) {
	ch, err := env.Peer.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	x := revocation.Entry{Kind: revocation.KindCapability, ID: "x", At: at(env)}
	y := revocation.Entry{Kind: revocation.KindAgent, ID: "y", At: at(env)}
	start := time.Now()
	mustRevoke(t, env.Store, x)
	mustRevoke(t, env.Store, x) // a repeat is not delivered again
	mustRevoke(t, env.Store, y)
	for _, want := range []revocation.Entry{x, y} {
		if got := receive(t, ch); !sameEntry(got, want) {
			t.Fatalf("watch delivered %+v, want %+v", got, want)
		}
	}
	t.Logf("revoke → peer watch: 2 revocations delivered in %v", time.Since(start))
}

func revWatchOnlyNew(t *testing.T, env RevocationEnv) {
	old := revocation.Entry{Kind: revocation.KindAgent, ID: "old", At: at(env)}
	mustRevoke(t, env.Store, old)
	// Let a shared backend's subscriber see the old revocation before the
	// watch starts, so that it is not "new" to the peer.
	Eventually(t, waitDeadline, "peer sees the old revocation", func() (bool, error) {
		_, ok, err := env.Peer.Revoked(t.Context(), old.Kind, old.ID)
		return ok, err
	})
	ch, err := env.Peer.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fresh := revocation.Entry{Kind: revocation.KindAgent, ID: "new", At: at(env)}
	mustRevoke(t, env.Store, fresh)
	if got := receive(t, ch); !sameEntry(got, fresh) {
		t.Fatalf("watch delivered %+v, want only %+v", got, fresh)
	}
}

func revWatchCloses(t *testing.T, env RevocationEnv) {
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := env.Peer.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	timer := time.NewTimer(waitDeadline)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("watch channel still open %v after its context ended", waitDeadline)
		}
	}
}
