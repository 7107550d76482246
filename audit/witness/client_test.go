package witness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func startWitness(t *testing.T, lg *testLog) (*Server, *httptest.Server, *Verifier) {
	t.Helper()
	c := fixedCosigner(t, "witness.example/w", 5, t0)
	srv := newTestServer(t, t.TempDir(), c, lg.verifier(t))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	v, err := NewCosignatureVerifier(c.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return srv, hs, v
}

func TestSubmit(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 20)
	srv, hs, v := startWitness(t, lg)
	ctx := context.Background()
	prove := func(old uint64) (tlog.TreeProof, error) {
		return tlog.ProveTree(lg.tree.n, int64(old), lg.tree.reader())
	}
	proveAt := func(size int64) func(uint64) (tlog.TreeProof, error) {
		return func(old uint64) (tlog.TreeProof, error) { return tlog.ProveTree(size, int64(old), lg.tree.reader()) }
	}

	// From nothing, then growing; Submit finds the witness's size by itself (409, retry).
	for _, size := range []int64{1, 2, 7, 7, 20} {
		cp := lg.checkpoint(t, size)
		cosigs, err := Submit(ctx, hs.URL, cp, proveAt(size))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		out, err := AddCosignatures(cp, cosigs, v)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(out, note.VerifierList(v, lg.verifier(t)))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("cosigned note: %v, %d signatures", err, len(n.Sigs))
		}
		if at, ok := CosignedAt(n, v); !ok || !at.Equal(t0) {
			t.Fatalf("CosignedAt = %v %v", at, ok)
		}
		// Cosigning again replaces the old cosignature rather than adding a second.
		again, err := AddCosignatures(out, cosigs, v)
		if err != nil || strings.Count(string(again), "— witness.example/w ") != 1 {
			t.Fatalf("re-adding: %v\n%s", err, again)
		}
	}
	if size, _, _ := srv.Latest(lg.origin); size != 20 {
		t.Fatalf("witness at %d, want 20", size)
	}

	// WithOldSize saves the first round trip, and a wrong hint is corrected.
	lg.tree.add(t, "a", 5)
	for _, hint := range []uint64{20, 3, 100} {
		if _, err := Submit(ctx, hs.URL, lg.checkpoint(t, 25), prove, WithOldSize(hint)); err != nil {
			t.Fatalf("hint %d: %v", hint, err)
		}
	}

	// Rollback: a smaller checkpoint than the witness has cosigned.
	_, err := Submit(ctx, hs.URL, lg.checkpoint(t, 10), proveAt(10))
	if !errors.Is(err, ErrRollback) || !errors.Is(err, ErrConflict) {
		t.Fatalf("rollback: %v, want ErrRollback", err)
	}
	// Fork at the witness's size.
	forked := signNote(t, checkpointText(lg.origin, 25, sumOf("x")), lg.signer)
	if _, err := Submit(ctx, hs.URL, forked, prove); !errors.Is(err, ErrFork) {
		t.Fatalf("fork: %v, want ErrFork", err)
	}
	// Fork at a larger size: another history of 30 records.
	other := &testLog{origin: lg.origin, signer: lg.signer, vkey: lg.vkey}
	other.tree.add(t, "b", 30)
	_, err = Submit(ctx, hs.URL, other.checkpoint(t, 30), func(old uint64) (tlog.TreeProof, error) {
		return tlog.ProveTree(30, int64(old), other.tree.reader())
	})
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("other history: %v, want ErrInconsistent", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity {
		t.Fatalf("error %#v", err)
	}
}

func TestPushErrors(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 3)
	_, hs, _ := startWitness(t, lg)
	ctx := context.Background()
	unknown := newTestLog(t, "example.com/unknown")
	unknown.tree.add(t, "a", 3)
	if _, err := Push(ctx, hs.URL, unknown.checkpoint(t, 3), 0, nil); !errors.Is(err, ErrUnknownLog) {
		t.Fatalf("unknown log: %v", err)
	}
	imposter := &testLog{origin: lg.origin, signer: newTestLog(t, lg.origin).signer, tree: lg.tree}
	if _, err := Push(ctx, hs.URL, imposter.checkpoint(t, 3), 0, nil); !errors.Is(err, ErrForbidden) {
		t.Fatalf("untrusted key: %v", err)
	}
	if _, err := Push(ctx, hs.URL, lg.checkpoint(t, 3), 5, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("old > size: %v", err)
	}
	hs.Close()
	if _, err := Push(ctx, hs.URL, lg.checkpoint(t, 3), 0, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed witness: %v", err)
	}
}

// TestPushHostileWitness: whatever a witness answers, Push returns an error or
// well-formed signature lines, and AddCosignatures accepts only a valid cosignature by
// the expected key.
func TestPushHostileWitness(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 3)
	cp := lg.checkpoint(t, 3)
	good := fixedCosigner(t, "witness.example/w", 5, t0)
	v, _ := NewCosignatureVerifier(good.VerifierKey())
	wrongKey := fixedCosigner(t, "witness.example/w", 6, t0) // same name, another key
	text, _, _ := splitNote(cp)
	wrongLine, _ := signatureLine(wrongKey, string(text))
	goodLine, _ := signatureLine(good, string(text))
	otherText, _ := signatureLine(good, "example.com/log\n3\n"+h1+"\n")
	cases := []struct {
		name      string
		status    int
		ctype     string
		body      string
		pushErr   error
		cosignErr error
	}{
		{"good", 200, "text/plain", string(goodLine), nil, nil},
		{"empty 200", 200, "text/plain", "", ErrMalformed, nil},
		{"not a signature line", 200, "text/plain", "hello\n", ErrMalformed, nil},
		{"no final newline", 200, "text/plain", strings.TrimSuffix(string(goodLine), "\n"), ErrMalformed, nil},
		{"wrong key", 200, "text/plain", string(wrongLine), nil, ErrBadCosignature},
		{"signature over another checkpoint", 200, "text/plain", string(otherText), nil, ErrBadCosignature},
		{"huge", 200, "text/plain", strings.Repeat("a", MaxResponseSize+10), ErrMalformed, nil},
		{"409 no content type", 409, "text/plain", "3\n", ErrMalformed, nil},
		{"409 garbage size", 409, "text/x.tlog.size", "three\n", ErrMalformed, nil},
		{"409 leading zero", 409, "text/x.tlog.size", "03\n", ErrMalformed, nil},
		{"409 larger", 409, "text/x.tlog.size", "9\n", ErrRollback, nil},
		{"500", 500, "text/plain", "oops", ErrUnavailable, nil},
		{"302", 302, "text/plain", "", ErrUnavailable, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", c.ctype)
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
			}))
			defer hs.Close()
			lines, err := Push(context.Background(), hs.URL, cp, 0, nil)
			if c.pushErr != nil {
				if !errors.Is(err, c.pushErr) {
					t.Fatalf("Push = %v, want %v", err, c.pushErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = AddCosignatures(cp, lines, v)
			if c.cosignErr == nil && err != nil || c.cosignErr != nil && !errors.Is(err, c.cosignErr) {
				t.Fatalf("AddCosignatures = %v, want %v", err, c.cosignErr)
			}
		})
	}
}
