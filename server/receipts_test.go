package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/server"
)

// recordingSink keeps the events a server emits.
type recordingSink struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (s *recordingSink) Emit(_ context.Context, ev audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
	return nil
}

func (s *recordingSink) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.evs {
		out = append(out, ev.EventType)
	}
	return out
}

// signReceipt has the executor sign a receipt through the server and returns the answer.
func (w *world) signReceipt(t testing.TB, executor *agent, env []byte, extra map[string]any) resp {
	t.Helper()
	body := map[string]any{"envelope": json.RawMessage(env), "outcome": "three sources"}
	for k, v := range extra {
		if v == nil {
			delete(body, k)
		} else {
			body[k] = v
		}
	}
	return w.post(t, "/v1/receipts", executor.token, body)
}

func receiptOf(t testing.TB, r resp) json.RawMessage {
	t.Helper()
	if r.status != 201 {
		t.Fatalf("sign receipt: %d %s", r.status, r.body)
	}
	var out struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Receipt
}

func verifyReceiptBody(rc, env json.RawMessage, extra map[string]any) map[string]any {
	body := map[string]any{"receipt": rc, "envelope": env}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// The round trip: alice hands off to bob, bob verifies and executes, the sidecar signs
// bob's receipt, alice verifies it once (a second time is a replay).
func TestReceiptRoundTrip(t *testing.T) {
	sink := &recordingSink{}
	w := newWorld(t, func(c *server.Config) { c.Audit = sink })
	env := w.sign(t, w.alice, w.bob)
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
	r := w.signReceipt(t, w.bob, env, nil)
	rc := receiptOf(t, r)
	m := r.json(t)
	parsed, err := receipt.Parse(rc)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Executor != w.bob.id || parsed.OutcomeHash != receipt.HashBytes([]byte("three sources")) || parsed.ReasonHash != nil {
		t.Fatalf("receipt %s", rc)
	}
	dg, _ := parsed.Digest()
	if m["receipt_digest"] != strings.ToLower(hexOf(dg[:])) || m["receipt_id"] != parsed.ReceiptID {
		t.Fatalf("answer %v", m)
	}

	// A dry run consumes nothing; the real one does; the next is a replay.
	wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=1", w.alice.token, verifyReceiptBody(rc, env, map[string]any{"outcome": "three sources"})), "ACCEPT", "ok")
	d := wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc, env, map[string]any{"outcome": "three sources"})), "ACCEPT", "ok")
	if d["executor"] != w.bob.id || d["receipt_digest"] != m["receipt_digest"] || d["dry_run"] != false {
		t.Fatalf("decision %v", d)
	}
	wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc, env, nil)), "REJECT", "replay_detected")
	wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=1", w.alice.token, verifyReceiptBody(rc, env, nil)), "REJECT", "replay_detected")

	var accepted, rejected int
	for _, typ := range sink.types() {
		switch typ {
		case audit.ReceiptAccepted:
			accepted++
		case audit.ReceiptRejected:
			rejected++
		}
	}
	if accepted < 2 || rejected < 2 {
		t.Fatalf("audit events %v", sink.types())
	}
	if r := w.get(t, "/metrics", ""); !strings.Contains(string(r.body), `trusthandoff_receipt_decisions_total{decision="REJECT",reason="replay_detected"} 2`) {
		t.Fatalf("metrics lack the receipt decisions:\n%s", r.body)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// Hashes instead of bytes, a reason, and a chain of two receipts.
func TestReceiptHashesReasonsAndDependencies(t *testing.T) {
	w := newWorld(t)
	env1 := w.sign(t, w.alice, w.bob)
	outHash := receipt.FormatHash(receipt.HashBytes([]byte("big result")))
	r1 := w.signReceipt(t, w.bob, env1, map[string]any{"outcome": nil, "outcome_hash": outHash, "status": "PARTIAL", "reason": "half done"})
	rc1 := receiptOf(t, r1)
	dep := r1.json(t)["receipt_digest"].(string)
	wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=true", w.carol.token, verifyReceiptBody(rc1, env1, map[string]any{"outcome": "big result", "reason": "half done"})), "ACCEPT", "ok")
	wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=true", w.carol.token, verifyReceiptBody(rc1, env1, map[string]any{"outcome": "big result"})), "REJECT", "outcome_mismatch")
	wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=true", w.carol.token, verifyReceiptBody(rc1, env1, map[string]any{"outcome_base64": "bm8=", "reason": "half done"})), "REJECT", "outcome_mismatch")

	env2 := w.sign(t, w.bob, w.carol)
	rc2 := receiptOf(t, w.signReceipt(t, w.carol, env2, map[string]any{"depends_on": []string{dep}, "outcome_base64": nil, "outcome": "report"}))
	deps := []map[string]any{{"receipt": rc1, "envelope": json.RawMessage(env1)}}
	wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc2, env2, map[string]any{"dependencies": deps})), "ACCEPT", "ok")
	rc2b := receiptOf(t, w.signReceipt(t, w.carol, env2, map[string]any{"depends_on": []string{dep}}))
	wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc2b, env2, nil)), "REJECT", "dependency_invalid")
}

// Hostile input: the wrong caller, forged and mismatched receipts, broken bodies.
func TestReceiptHostileInput(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.MaxBodyBytes = 16 << 10 })
	env := w.sign(t, w.alice, w.bob)
	rc := receiptOf(t, w.signReceipt(t, w.bob, env, nil))

	t.Run("wrong caller", func(t *testing.T) {
		wantError(t, w.signReceipt(t, w.carol, env, nil), 403, server.CodeForbidden)
		wantError(t, w.signReceipt(t, w.alice, env, nil), 403, server.CodeForbidden)
		wantError(t, w.post(t, "/v1/receipts", adminToken, map[string]any{"envelope": json.RawMessage(env), "outcome": "x"}), 403, server.CodeForbidden)
		wantError(t, w.post(t, "/v1/receipts", "", map[string]any{"envelope": json.RawMessage(env), "outcome": "x"}), 401, server.CodeUnauthorized)
		wantError(t, w.post(t, "/v1/receipts", "not-a-token", map[string]any{"envelope": json.RawMessage(env), "outcome": "x"}), 401, server.CodeUnauthorized)
		wantError(t, w.post(t, "/v1/receipts/verify", "", verifyReceiptBody(rc, env, nil)), 401, server.CodeUnauthorized)
	})
	t.Run("forged envelope signature", func(t *testing.T) {
		forged := strings.Replace(string(env), "summarize tickets", "summarize tickeTs", 1)
		wantError(t, w.signReceipt(t, w.bob, []byte(forged), nil), 400, server.CodeInvalid)
	})
	t.Run("forged receipt", func(t *testing.T) {
		var m map[string]any
		if err := json.Unmarshal(rc, &m); err != nil {
			t.Fatal(err)
		}
		m["outcome_hash"] = receipt.FormatHash(receipt.HashBytes([]byte("something else")))
		forged, _ := json.Marshal(m)
		wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(forged, env, nil)), "REJECT", "invalid_signature")
		// The forgery burnt no nonce: the real receipt still verifies.
		wantDecision(t, w.post(t, "/v1/receipts/verify?dry_run=1", w.alice.token, verifyReceiptBody(rc, env, nil)), "ACCEPT", "ok")
	})
	t.Run("other packet", func(t *testing.T) {
		other := w.sign(t, w.alice, w.bob)
		wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc, other, nil)), "REJECT", "receipt_packet_mismatch")
	})
	t.Run("replayed receipt", func(t *testing.T) {
		rc := receiptOf(t, w.signReceipt(t, w.bob, env, nil))
		wantDecision(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc, env, nil)), "ACCEPT", "ok")
		wantDecision(t, w.post(t, "/v1/receipts/verify", w.carol.token, verifyReceiptBody(rc, env, nil)), "REJECT", "replay_detected")
	})
	for _, tc := range []struct {
		name, path, ctype string
		body              string
		status            int
		code              string
	}{
		{"malformed JSON sign", "/v1/receipts", "application/json", `{"envelope":`, 400, server.CodeBadRequest},
		{"malformed JSON verify", "/v1/receipts/verify", "application/json", `{"receipt":{]}`, 400, server.CodeBadRequest},
		{"unknown field", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `,"outcome":"x","extra":1}`, 400, server.CodeBadRequest},
		{"trailing data", "/v1/receipts/verify", "application/json", `{"receipt":` + string(rc) + `,"envelope":` + string(env) + `} {}`, 400, server.CodeBadRequest},
		{"no outcome", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `}`, 400, server.CodeInvalid},
		{"two outcomes", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `,"outcome":"x","outcome_base64":"eA=="}`, 400, server.CodeInvalid},
		{"bad status", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `,"outcome":"x","status":"DONE"}`, 400, server.CodeInvalid},
		{"bad time", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `,"outcome":"x","started_at":"yesterday"}`, 400, server.CodeInvalid},
		{"bad depends_on", "/v1/receipts", "application/json", `{"envelope":` + string(env) + `,"outcome":"x","depends_on":["ABC"]}`, 400, server.CodeInvalid},
		{"envelope not an envelope", "/v1/receipts", "application/json", `{"envelope":{"packet":1},"outcome":"x"}`, 400, server.CodeMalformed},
		{"receipt not a receipt", "/v1/receipts/verify", "application/json", `{"receipt":{"version":"x"},"envelope":` + string(env) + `}`, 400, server.CodeMalformed},
		{"no receipt", "/v1/receipts/verify", "application/json", `{"envelope":` + string(env) + `}`, 400, server.CodeInvalid},
		{"reason without outcome", "/v1/receipts/verify", "application/json", `{"receipt":` + string(rc) + `,"envelope":` + string(env) + `,"reason":"r"}`, 400, server.CodeInvalid},
		{"wrong content type sign", "/v1/receipts", "text/plain", `{}`, 415, server.CodeUnsupportedMedia},
		{"wrong content type verify", "/v1/receipts/verify", "application/x-www-form-urlencoded", `receipt=1`, 415, server.CodeUnsupportedMedia},
		{"oversize", "/v1/receipts/verify", "application/json", `{"receipt":"` + strings.Repeat("a", 17<<10) + `"}`, 413, server.CodeTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, w.do(t, "POST", tc.path, w.bob.token, tc.ctype, []byte(tc.body)), tc.status, tc.code)
		})
	}
	wantError(t, w.do(t, "POST", "/v1/receipts/verify?dry_run=maybe", w.bob.token, "application/json", []byte(`{}`)), 400, server.CodeBadRequest)
	wantError(t, w.get(t, "/v1/receipts", w.bob.token), 405, server.CodeMethodNotAllowed)
}

func TestReceiptNeedsAHeldKey(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.Signers = nil })
	env := w.sign(t, w.alice, w.bob)
	wantError(t, w.signReceipt(t, w.bob, env, nil), 409, server.CodeNoKey)
}

func TestReceiptVerifyStoreUnavailable(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.Store = failingStore{c.Store} })
	env := w.sign(t, w.alice, w.bob)
	rc := receiptOf(t, w.signReceipt(t, w.bob, env, nil)) // signing needs no store
	wantError(t, w.post(t, "/v1/receipts/verify", w.alice.token, verifyReceiptBody(rc, env, nil)), 503, server.CodeUnavailable)
}
