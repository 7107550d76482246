package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
	"github.com/trusthandoff/trusthandoff-go/server"
)

const auditorToken = "auditor-token-for-tests-0123456789"

// auditLog is a file audit log in a temporary directory and its verifier key.
type auditLog struct {
	path string
	sink *audit.FileSink
	key  note.Verifier
}

func newAuditLog(t testing.TB) *auditLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	signer, err := audit.LoadKey(audit.KeyPath(path))
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.Verifier(signer)
	if err != nil {
		t.Fatal(err)
	}
	return &auditLog{path: path, sink: sink, key: key}
}

// refresh writes the sink's checkpoint of every record so far (the sink itself does it
// within a second; tests do not wait).
func (l *auditLog) refresh(t testing.TB) {
	t.Helper()
	if err := audit.UpdateCheckpointFile(l.path, func([]byte) ([]byte, error) { return l.sink.Checkpoint() }); err != nil {
		t.Fatal(err)
	}
}

func (l *auditLog) read(t testing.TB) *audit.Log {
	t.Helper()
	lg, err := audit.ReadLog(l.path)
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

func withAuditLog(l *auditLog, ws ...server.Witness) func(*server.Config) {
	return func(c *server.Config) {
		c.Audit = l.sink
		c.AuditLog = &server.AuditLogConfig{Path: l.path, Key: l.key, AuditorToken: auditorToken, Witnesses: ws}
	}
}

func TestAuditEndpoints(t *testing.T) {
	l := newAuditLog(t)
	w := newWorld(t, withAuditLog(l))
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	wantDecision(t, w.post(t, "/v1/verify", w.carol.token, w.sign(t, w.alice, w.bob)), "REJECT", "wrong_recipient")
	l.refresh(t)
	lg := l.read(t)
	// One event for the ACCEPT, two for the wrong-recipient REJECT (packet_rejected and
	// wrong_recipient).
	if lg.Size() != 3 {
		t.Fatalf("log has %d records, want 3", lg.Size())
	}

	t.Run("checkpoint", func(t *testing.T) {
		for _, tok := range []string{auditorToken, adminToken} {
			r := w.get(t, "/v1/audit/checkpoint", tok)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Fatalf("%d %s", r.status, r.body)
			}
			cp, _, err := audit.OpenCheckpoint(r.body, note.VerifierList(l.key))
			if err != nil || cp.Size != 3 || r.header.Get("X-Trusthandoff-Tree-Size") != "3" {
				t.Fatalf("checkpoint %+v, %v\n%s", cp, err, r.body)
			}
		}
	})
	t.Run("proof", func(t *testing.T) {
		id := lg.Record(1).EventID
		r := w.get(t, "/v1/audit/proof?event_id="+id, auditorToken)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		p, err := audit.ParseProof(r.body[:len(r.body)-1])
		if err != nil {
			t.Fatal(err)
		}
		if cp, err := p.Verify(l.key); err != nil || p.Index != 1 || cp.Size != 3 {
			t.Fatalf("proof of %s: index %d, %+v, %v", id, p.Index, cp, err)
		}
		wantError(t, w.get(t, "/v1/audit/proof?event_id=no-such-event", auditorToken), 404, server.CodeNotFound)
		wantError(t, w.get(t, "/v1/audit/proof", auditorToken), 400, server.CodeBadRequest)
		wantError(t, w.get(t, "/v1/audit/proof?event_id="+strings.Repeat("x", 300), auditorToken), 400, server.CodeBadRequest)
	})
	t.Run("export", func(t *testing.T) {
		for _, tc := range []struct {
			query string
			want  int
		}{{"", 3}, {"?since=0", 3}, {"?since=1", 2}, {"?since=2", 1}, {"?since=3", 0}, {"?since=99", 0}} {
			r := w.get(t, "/v1/audit/export"+tc.query, adminToken)
			if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("%s: %d %s", tc.query, r.status, r.body)
			}
			var lines [][]byte
			sc := bufio.NewScanner(bytes.NewReader(r.body))
			for sc.Scan() {
				lines = append(lines, append([]byte(nil), sc.Bytes()...))
			}
			if len(lines) != tc.want {
				t.Fatalf("%s: %d lines, want %d:\n%s", tc.query, len(lines), tc.want, r.body)
			}
			for i, line := range lines {
				if want := lg.Line(uint64(3 - tc.want + i)); !bytes.Equal(line, want) {
					t.Fatalf("%s: line %d is\n%s\nwant\n%s", tc.query, i, line, want)
				}
			}
		}
		wantError(t, w.get(t, "/v1/audit/export?since=-1", adminToken), 400, server.CodeBadRequest)
	})
	t.Run("access", func(t *testing.T) {
		for _, p := range []string{"/v1/audit/checkpoint", "/v1/audit/proof?event_id=x", "/v1/audit/export"} {
			wantError(t, w.get(t, p, ""), 401, server.CodeUnauthorized)
			wantError(t, w.get(t, p, w.bob.token), 403, server.CodeForbidden)
			wantError(t, w.get(t, p, "wrong-token"), 401, server.CodeUnauthorized)
		}
		// The auditor token reads the audit log and does nothing else.
		wantError(t, w.post(t, "/v1/verify", auditorToken, w.sign(t, w.alice, w.bob)), 403, server.CodeForbidden)
		wantError(t, w.get(t, "/v1/registry/agents", auditorToken), 403, server.CodeForbidden)
		wantError(t, w.post(t, "/v1/revocations", auditorToken, map[string]any{"agent_id": w.bob.id}), 403, server.CodeForbidden)
		wantError(t, w.post(t, "/v1/receipts/verify", auditorToken, map[string]any{}), 403, server.CodeForbidden)
		if r := w.get(t, "/healthz", auditorToken); r.status != 200 {
			t.Fatalf("healthz with the auditor token: %d", r.status)
		}
	})
}

func TestAuditEndpointsWithoutLog(t *testing.T) {
	w := newWorld(t)
	for _, p := range []string{"/v1/audit/checkpoint", "/v1/audit/proof?event_id=x", "/v1/audit/export"} {
		r := w.get(t, p, adminToken)
		wantError(t, r, 404, server.CodeNotFound)
		if !strings.Contains(string(r.body), "--audit-log") {
			t.Fatalf("the 404 does not say why: %s", r.body)
		}
	}
}

// A record newer than the stored checkpoint is not proven yet (409); a log with no
// checkpoint answers 404; a tampered log 503.
func TestAuditProofStates(t *testing.T) {
	l := newAuditLog(t)
	w := newWorld(t, withAuditLog(l))
	wantError(t, w.get(t, "/v1/audit/checkpoint", adminToken), 404, server.CodeNotFound)
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	l.refresh(t)
	old, err := audit.ReadCheckpointFile(audit.CheckpointPath(l.path))
	if err != nil {
		t.Fatal(err)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	// Put the checkpoint of one record back, whatever the sink refreshed meanwhile.
	if err := audit.UpdateCheckpointFile(l.path, func([]byte) ([]byte, error) { return old, nil }); err != nil {
		t.Fatal(err)
	}
	lg := l.read(t)
	wantError(t, w.get(t, "/v1/audit/proof?event_id="+lg.Record(1).EventID, auditorToken), 409, server.CodeConflict)
	if r := w.get(t, "/v1/audit/proof?event_id="+lg.Record(0).EventID, auditorToken); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}

	// A checkpoint signed by another key is not served.
	other := newAuditLog(t)
	w2 := newWorld(t, func(c *server.Config) {
		c.AuditLog = &server.AuditLogConfig{Path: l.path, Key: other.key}
	})
	wantError(t, w2.get(t, "/v1/audit/checkpoint", adminToken), 503, server.CodeUnavailable)
	wantError(t, w2.get(t, "/v1/audit/proof?event_id="+lg.Record(0).EventID, adminToken), 503, server.CodeUnavailable)

	// An edited record breaks the chain: nothing is exported or proven.
	data, err := os.ReadFile(l.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.path, bytes.Replace(data, []byte(`"packet_accepted"`), []byte(`"packet_rejected"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	wantError(t, w.get(t, "/v1/audit/export", auditorToken), 503, server.CodeUnavailable)
	wantError(t, w.get(t, "/v1/audit/proof?event_id="+lg.Record(0).EventID, auditorToken), 503, server.CodeUnavailable)
}

// ourWitness runs an audit/witness server on loopback that witnesses the log key.
func ourWitness(t testing.TB, name string, logKey note.Verifier, wrap func(http.Handler) http.Handler) (server.Witness, *witness.Verifier) {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := witness.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := witness.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := witness.NewServer(witness.Config{Cosigner: cs, Logs: []note.Verifier{logKey}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = ws
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); ws.Close() })
	return server.Witness{URL: ts.URL, Key: wv}, wv
}

// downWitness is a witness URL where nothing listens.
func downWitness(t testing.TB, name string) server.Witness {
	t.Helper()
	_, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := witness.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	return server.Witness{URL: url, Key: wv}
}

func cosignedSize(t testing.TB, signed []byte, logKey note.Verifier, wv *witness.Verifier) (uint64, bool) {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(logKey, wv))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := witness.CosignedAt(n, wv); !ok {
		return 0, false
	}
	cp, err := audit.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size, true
}

func TestWitnessPush(t *testing.T) {
	l := newAuditLog(t)
	good, gv := ourWitness(t, "witness.test/good", l.key, nil)
	down := downWitness(t, "witness.test/down")
	w := newWorld(t, withAuditLog(l, good, down))
	ctx := context.Background()

	// Nothing written yet: nothing to push.
	if err := w.srv.PushWitnesses(ctx); err != nil {
		t.Fatal(err)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	l.refresh(t)
	err := w.srv.PushWitnesses(ctx)
	if err == nil || !errors.Is(err, witness.ErrUnavailable) || !strings.Contains(err.Error(), "witness.test/down") {
		t.Fatalf("push with one witness down: %v", err)
	}
	r := w.get(t, "/v1/audit/checkpoint", auditorToken)
	if size, ok := cosignedSize(t, r.body, l.key, gv); !ok || size != 1 {
		t.Fatalf("the served checkpoint carries no cosignature of size 1 (%d):\n%s", size, r.body)
	}
	// Verification is unaffected by the witness that is down.
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	l.refresh(t)
	if err := w.srv.PushWitnesses(ctx); err == nil {
		t.Fatal("the down witness did not fail")
	}
	r = w.get(t, "/v1/audit/checkpoint", auditorToken)
	if size, ok := cosignedSize(t, r.body, l.key, gv); !ok || size != 2 {
		t.Fatalf("cosigned size %d, want 2:\n%s", size, r.body)
	}
	// Up to date: the good witness is not asked again (its ok count stays 2).
	_ = w.srv.PushWitnesses(ctx)
	m := string(w.get(t, "/metrics", "").body)
	for _, want := range []string{
		`trusthandoff_witness_pushes_total{result="ok",witness="witness.test/good"} 2`,
		`trusthandoff_witness_pushes_total{result="error",witness="witness.test/down"} 3`,
		`trusthandoff_witness_cosigned_size{witness="witness.test/good"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The proof of an event carries the cosigned checkpoint.
	lg := l.read(t)
	r = w.get(t, "/v1/audit/proof?event_id="+lg.Record(0).EventID, auditorToken)
	p, err := audit.ParseProof(bytes.TrimSpace(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verify(l.key, gv); err != nil {
		t.Fatalf("proof with the witness key: %v", err)
	}
}

// A witness that hangs holds no lock: verification (and its audit record) go on.
func TestWitnessHangingDoesNotBlockVerification(t *testing.T) {
	l := newAuditLog(t)
	entered, release := make(chan struct{}), make(chan struct{})
	hang := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			http.Error(w, "gave up", http.StatusServiceUnavailable)
		})
	}
	slow, _ := ourWitness(t, "witness.test/slow", l.key, hang)
	w := newWorld(t, withAuditLog(l, slow))
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	l.refresh(t)
	done := make(chan error, 1)
	go func() { done <- w.srv.PushWitnesses(context.Background()) }()
	<-entered
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	if r := w.get(t, "/v1/audit/export", auditorToken); r.status != 200 || bytes.Count(r.body, []byte("\n")) != 2 {
		t.Fatalf("export while a push hangs: %d %s", r.status, r.body)
	}
	close(release)
	if err := <-done; !errors.Is(err, witness.ErrUnavailable) {
		t.Fatalf("push to a failing witness: %v", err)
	}
}

func TestRunWitnessesStops(t *testing.T) {
	l := newAuditLog(t)
	asked := make(chan struct{}, 1)
	notify := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			select {
			case asked <- struct{}{}:
			default:
			}
		})
	}
	good, _ := ourWitness(t, "witness.test/run", l.key, notify)
	w := newWorld(t, withAuditLog(l, good))
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	l.refresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { w.srv.RunWitnesses(ctx); close(stopped) }()
	<-asked // the first round pushes at once
	cancel()
	<-stopped
}
