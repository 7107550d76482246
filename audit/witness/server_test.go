package witness

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// step is one add-checkpoint request and the outcome the witness must give.
type step struct {
	name    string
	body    func(t *testing.T) []byte
	wantErr error // nil: cosigned
	status  int
	size    uint64 // the witness's size afterwards
}

func TestServerHistory(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 10)
	// fork: the same first 5 records, then different ones.
	fork := newTestLog(t, "example.com/log")
	fork.signer, fork.vkey = lg.signer, lg.vkey
	fork.tree.add(t, "a", 5)
	fork.tree.add(t, "b", 10)
	other := newTestLog(t, "example.com/log") // same origin, a key the witness does not trust
	other.tree = lg.tree
	unknown := newTestLog(t, "example.com/unknown")
	unknown.tree.add(t, "a", 3)

	c := fixedCosigner(t, "witness.example/w", 9, t0)
	cv, _ := NewCosignatureVerifier(c.VerifierKey())
	dir := t.TempDir()
	srv := newTestServer(t, dir, c, lg.verifier(t))
	// httpSrv goes through the same history over HTTP.
	httpSrv := newTestServer(t, t.TempDir(), c, lg.verifier(t))

	steps := []step{
		{"first checkpoint from 0", func(t *testing.T) []byte { return request(0, nil, lg.checkpoint(t, 3)) }, nil, 200, 3},
		{"stale old size", func(t *testing.T) []byte { return request(0, nil, lg.checkpoint(t, 5)) }, ErrConflict, 409, 3},
		{"extend 3 to 5", func(t *testing.T) []byte { return request(3, lg.tree.proof(t, 3, 5), lg.checkpoint(t, 5)) }, nil, 200, 5},
		{"same checkpoint again", func(t *testing.T) []byte { return request(5, nil, lg.checkpoint(t, 5)) }, nil, 200, 5},
		{"fork at the same size", func(t *testing.T) []byte {
			return request(5, nil, signNote(t, checkpointText(lg.origin, 5, sumOf("other")), lg.signer))
		}, ErrFork, 409, 5},
		{"fork extending with a bogus proof", func(t *testing.T) []byte {
			return request(5, lg.tree.proof(t, 5, 8), fork.checkpoint(t, 8))
		}, ErrInconsistent, 422, 5},
		{"rollback: old larger than size", func(t *testing.T) []byte { return request(5, nil, lg.checkpoint(t, 4)) }, ErrMalformed, 400, 5},
		{"rollback: old matching the smaller size", func(t *testing.T) []byte { return request(4, nil, lg.checkpoint(t, 4)) }, ErrConflict, 409, 5},
		{"untrusted key", func(t *testing.T) []byte { return request(5, lg.tree.proof(t, 5, 6), other.checkpoint(t, 6)) }, ErrForbidden, 403, 5},
		{"unsigned", func(t *testing.T) []byte {
			return request(5, nil, []byte(checkpointText(lg.origin, 5, lg.tree.root(t, 5))+"\n"))
		}, ErrMalformed, 400, 5},
		{"unknown origin", func(t *testing.T) []byte { return request(0, nil, unknown.checkpoint(t, 3)) }, ErrUnknownLog, 404, 5},
		{"proof from 0", func(t *testing.T) []byte {
			return request(0, tlog.TreeProof{{}}, lg.checkpoint(t, 6))
		}, ErrMalformed, 400, 5},
		{"extend 5 to 10", func(t *testing.T) []byte { return request(5, lg.tree.proof(t, 5, 10), lg.checkpoint(t, 10)) }, nil, 200, 10},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			body := s.body(t)
			cosig, err := srv.AddCheckpoint(body)
			if s.wantErr == nil {
				if err != nil {
					t.Fatalf("AddCheckpoint: %v", err)
				}
				req, _ := ParseAddCheckpoint(body)
				out, err := AddCosignatures(req.Checkpoint, cosig, cv)
				if err != nil {
					t.Fatalf("cosignature does not verify: %v", err)
				}
				if _, err := note.Open(out, note.VerifierList(cv, lg.verifier(t))); err != nil {
					t.Fatal(err)
				}
			} else {
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("AddCheckpoint = %v, want %v", err, s.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) || e.Status != s.status {
					t.Fatalf("status %+v, want %d", e, s.status)
				}
				if s.status == 409 && e.Size != s.size {
					t.Fatalf("409 size %d, want %d", e.Size, s.size)
				}
			}
			if got := postStatus(t, httpSrv, body); got != s.status {
				t.Fatalf("HTTP status %d, want %d", got, s.status)
			}
			for _, w := range []*Server{srv, httpSrv} {
				if size, _, err := w.Latest(lg.origin); err != nil || size != s.size {
					t.Fatalf("witness size %d (%v), want %d", size, err, s.size)
				}
			}
		})
	}
	ents, _ := os.ReadDir(filepath.Join(dir, evidenceDir))
	if len(ents) != 2 { // the same-size fork and the inconsistent extension
		t.Fatalf("%d evidence files, want 2", len(ents))
	}
}

func sumOf(s string) tlog.Hash { return tlog.RecordHash([]byte(s)) }

func postStatus(t *testing.T, h http.Handler, body []byte) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/add-checkpoint", strings.NewReader(string(body))))
	if rec.Code == http.StatusConflict && rec.Header().Get("Content-Type") != "text/x.tlog.size" {
		t.Fatalf("409 with Content-Type %q", rec.Header().Get("Content-Type"))
	}
	return rec.Code
}

// TestServerRestart: the state survives a restart (a new Server on the same directory),
// so a fork refused before is refused after, and the history goes on from where it was.
func TestServerRestart(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 8)
	c := fixedCosigner(t, "witness.example/w", 9, t0)
	dir := t.TempDir()
	s1, err := NewServer(Config{Cosigner: c, Logs: []note.Verifier{lg.verifier(t)}, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.AddCheckpoint(request(0, nil, lg.checkpoint(t, 4))); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(Config{Cosigner: c, Logs: []note.Verifier{lg.verifier(t)}, StateDir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second server on one state dir: %v, want ErrLocked", err)
	}
	s1.Close()

	s2 := newTestServer(t, dir, c, lg.verifier(t))
	if _, err := s2.AddCheckpoint(request(0, nil, lg.checkpoint(t, 6))); !errors.Is(err, ErrConflict) {
		t.Fatalf("after restart, old size 0: %v, want ErrConflict", err)
	}
	forked := signNote(t, checkpointText(lg.origin, 4, sumOf("x")), lg.signer)
	if _, err := s2.AddCheckpoint(request(4, nil, forked)); !errors.Is(err, ErrFork) {
		t.Fatalf("after restart, fork: %v, want ErrFork", err)
	}
	if _, err := s2.AddCheckpoint(request(4, lg.tree.proof(t, 4, 8), lg.checkpoint(t, 8))); err != nil {
		t.Fatalf("after restart, extension: %v", err)
	}
}

// TestServerCorruptState: a state file that cannot be read is never taken for "no
// state": the witness refuses to cosign that log.
func TestServerCorruptState(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 4)
	c := fixedCosigner(t, "witness.example/w", 9, t0)
	dir := t.TempDir()
	srv := newTestServer(t, dir, c, lg.verifier(t))
	if _, err := srv.AddCheckpoint(request(0, nil, lg.checkpoint(t, 2))); err != nil {
		t.Fatal(err)
	}
	path := srv.st.path(lg.origin)
	for name, content := range map[string]string{
		"garbage":      "garbage",
		"other origin": string(signNote(t, checkpointText("example.com/other", 1, sumOf("x")), lg.signer)),
		"truncated":    checkpointText(lg.origin, 2, lg.tree.root(t, 2))[:10],
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, old := range []int64{0, 2} {
				var proof tlog.TreeProof
				if old > 0 {
					proof = lg.tree.proof(t, old, 4)
				}
				_, err := srv.AddCheckpoint(request(old, proof, lg.checkpoint(t, 4)))
				if !errors.Is(err, ErrState) {
					t.Fatalf("old %d on corrupt state: %v, want ErrState", old, err)
				}
				if got := postStatus(t, srv, request(old, nil, lg.checkpoint(t, 4))); got != 500 {
					t.Fatalf("HTTP status %d, want 500", got)
				}
			}
		})
	}
}

// TestServerConcurrent: racing submitters never make the witness go back or cosign two
// views: every cosigned size is answered once its state is saved, and the final state is
// the largest.
func TestServerConcurrent(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	lg.tree.add(t, "a", 40)
	c := fixedCosigner(t, "witness.example/w", 9, t0)
	srv := newTestServer(t, t.TempDir(), c, lg.verifier(t))
	cps := make([][]byte, 41)
	for i := 1; i <= 40; i++ {
		cps[i] = lg.checkpoint(t, int64(i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cosigned []uint64
	for i := 1; i <= 40; i++ {
		wg.Go(func() {
			// Every submitter claims the witness is at i-1: exactly those that find it
			// there succeed, the others get 409.
			old := int64(i - 1)
			var proof tlog.TreeProof
			if old > 0 {
				proof = lg.tree.proof(t, old, int64(i))
			}
			if _, err := srv.AddCheckpoint(request(old, proof, cps[i])); err == nil {
				mu.Lock()
				cosigned = append(cosigned, uint64(i))
				mu.Unlock()
			} else if !errors.Is(err, ErrConflict) {
				t.Errorf("size %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	size, _, _ := srv.Latest(lg.origin)
	if size == 0 || len(cosigned) == 0 {
		t.Fatal("nothing cosigned")
	}
	for _, n := range cosigned {
		if n > size {
			t.Fatalf("cosigned %d but the state is at %d", n, size)
		}
	}
}

func TestServerHTTPLimits(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	srv := newTestServer(t, t.TempDir(), fixedCosigner(t, "w", 1, t0), lg.verifier(t))
	big := "old 0\n\n" + strings.Repeat("x", MaxRequestSize+1)
	if got := postStatus(t, srv, []byte(big)); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", got)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/add-checkpoint", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
}

func TestNewServerConfig(t *testing.T) {
	lg := newTestLog(t, "example.com/log")
	c := fixedCosigner(t, "w", 1, t0)
	for name, cfg := range map[string]Config{
		"no cosigner": {Logs: []note.Verifier{lg.verifier(t)}, StateDir: t.TempDir()},
		"no logs":     {Cosigner: c, StateDir: t.TempDir()},
		"no dir":      {Cosigner: c, Logs: []note.Verifier{lg.verifier(t)}},
		"nil log":     {Cosigner: c, Logs: []note.Verifier{nil}, StateDir: t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := NewServer(cfg); err == nil {
				s.Close()
				t.Fatal("accepted")
			}
		})
	}
}
