package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/pending"
)

// PendingEnv is one fresh pending store under test.
type PendingEnv struct {
	Store pending.Store
	// Clock is the store's clock, or nil when the store runs on real time.
	Clock *Clock
}

// RunPending runs the pending-approval behaviour suite. open is called once
// per case and must return an empty store.
func RunPending(t *testing.T, open func(t *testing.T) PendingEnv) {
	cases := []struct {
		name string
		run  func(t *testing.T, env PendingEnv)
	}{
		{"PutGetDelete", pendPutGetDelete},
		{"ListSorted", pendListSorted},
		{"Overwrite", pendOverwrite},
		{"CopiesEnvelopes", pendCopies},
		{"Expiry", pendExpiry},
		{"Invalid", pendInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

func mustPut(t *testing.T, s pending.Store, id string, env []byte, exp time.Time) {
	t.Helper()
	if err := s.Put(t.Context(), id, env, exp); err != nil {
		t.Fatalf("Put(%q): %v", id, err)
	}
}

func checkGet(t *testing.T, s pending.Store, id string, want []byte) {
	t.Helper()
	got, ok, err := s.Get(t.Context(), id)
	switch {
	case err != nil:
		t.Fatalf("Get(%q): %v", id, err)
	case want == nil && ok:
		t.Fatalf("Get(%q) = %q, want absent", id, got)
	case want != nil && (!ok || !bytes.Equal(got, want)):
		t.Fatalf("Get(%q) = %q, %v; want %q", id, got, ok, want)
	}
}

func listIDs(t *testing.T, s pending.Store) []string {
	t.Helper()
	items, err := s.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

func pendPutGetDelete(t *testing.T, env PendingEnv) {
	exp := now(env.Clock).Add(time.Minute)
	checkGet(t, env.Store, "h1", nil)
	mustPut(t, env.Store, "h1", []byte(`{"packet":1}`), exp)
	checkGet(t, env.Store, "h1", []byte(`{"packet":1}`))
	if err := env.Store.Delete(t.Context(), "h1"); err != nil {
		t.Fatal(err)
	}
	checkGet(t, env.Store, "h1", nil)
	if err := env.Store.Delete(t.Context(), "h1"); err != nil {
		t.Fatalf("Delete of a missing id: %v", err)
	}
	if ids := listIDs(t, env.Store); len(ids) != 0 {
		t.Fatalf("List after Delete = %q, want empty", ids)
	}
}

func pendListSorted(t *testing.T, env PendingEnv) {
	n := now(env.Clock)
	exp := n.Add(time.Minute).Round(time.Millisecond)
	for _, id := range []string{"c", "a", "b:1", "b", "é"} {
		mustPut(t, env.Store, id, []byte("env-"+id), exp)
	}
	items, err := env.Store.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "b:1", "c", "é"}
	if ids := listIDs(t, env.Store); !slices.Equal(ids, want) {
		t.Fatalf("List ids = %q, want %q", ids, want)
	}
	for _, it := range items {
		if string(it.Envelope) != "env-"+it.ID || !it.ExpiresAt.Equal(exp) {
			t.Fatalf("List item %q = %q expiring %s, want %q expiring %s", it.ID, it.Envelope, it.ExpiresAt, "env-"+it.ID, exp)
		}
	}
}

func pendOverwrite(t *testing.T, env PendingEnv) {
	exp := now(env.Clock).Add(time.Minute)
	mustPut(t, env.Store, "h", []byte("one"), exp)
	mustPut(t, env.Store, "h", []byte("two"), exp)
	checkGet(t, env.Store, "h", []byte("two"))
	if ids := listIDs(t, env.Store); !slices.Equal(ids, []string{"h"}) {
		t.Fatalf("List = %q, want [h]", ids)
	}
}

func pendCopies(t *testing.T, env PendingEnv) {
	exp := now(env.Clock).Add(time.Minute)
	in := []byte("original")
	mustPut(t, env.Store, "h", in, exp)
	in[0] = 'X'
	out, _, err := env.Store.Get(t.Context(), "h")
	if err != nil {
		t.Fatal(err)
	}
	out[0] = 'Y'
	checkGet(t, env.Store, "h", []byte("original"))
}

func pendExpiry(t *testing.T, env PendingEnv) {
	if env.Clock == nil {
		mustPut(t, env.Store, "short", []byte("s"), time.Now().Add(realTTL))
		mustPut(t, env.Store, "long", []byte("l"), time.Now().Add(time.Minute))
		Eventually(t, waitDeadline, "short item expires", func() (bool, error) {
			_, ok, err := env.Store.Get(t.Context(), "short")
			return !ok, err
		})
	} else {
		n := env.Clock.Now()
		mustPut(t, env.Store, "short", []byte("s"), n.Add(time.Second))
		mustPut(t, env.Store, "long", []byte("l"), n.Add(time.Minute))
		env.Clock.Advance(time.Second - time.Nanosecond)
		checkGet(t, env.Store, "short", []byte("s"))
		env.Clock.Advance(time.Nanosecond)
		checkGet(t, env.Store, "short", nil)
	}
	if ids := listIDs(t, env.Store); !slices.Equal(ids, []string{"long"}) {
		t.Fatalf("List = %q, want only the live item", ids)
	}
	checkGet(t, env.Store, "long", []byte("l"))
}

func pendInvalid(t *testing.T, env PendingEnv) {
	n := now(env.Clock)
	cases := []struct {
		name string
		id   string
		env  []byte
		exp  time.Time
	}{
		{"EmptyID", "", []byte("e"), n.Add(time.Minute)},
		{"BadUTF8", "\xff", []byte("e"), n.Add(time.Minute)},
		{"EmptyEnvelope", "h", nil, n.Add(time.Minute)},
		{"HugeEnvelope", "h", make([]byte, pending.MaxEnvelopeLen+1), n.Add(time.Minute)},
		{"Expired", "h", []byte("e"), n.Add(-time.Second)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := env.Store.Put(t.Context(), c.id, c.env, c.exp); !errors.Is(err, pending.ErrInvalid) {
				t.Fatalf("Put: %v, want an error wrapping ErrInvalid", err)
			}
		})
	}
	if _, _, err := env.Store.Get(t.Context(), ""); !errors.Is(err, pending.ErrInvalid) {
		t.Fatalf("Get(\"\"): %v, want ErrInvalid", err)
	}
	if err := env.Store.Delete(t.Context(), ""); !errors.Is(err, pending.ErrInvalid) {
		t.Fatalf("Delete(\"\"): %v, want ErrInvalid", err)
	}
	checkGet(t, env.Store, "h", nil)
}
