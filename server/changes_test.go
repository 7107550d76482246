package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/server"
)

// switchSink records events, or fails like an unreachable sink while fail is set.
type switchSink struct {
	recordingSink
	fail atomic.Bool
}

func (s *switchSink) Emit(ctx context.Context, ev audit.Event) error {
	if s.fail.Load() {
		return audit.ErrUnavailable
	}
	return s.recordingSink.Emit(ctx, ev)
}

// last returns the newest event of type typ, failing the test when there is none.
func (s *switchSink) last(t *testing.T, typ string) audit.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.evs) - 1; i >= 0; i-- {
		if s.evs[i].EventType == typ {
			return s.evs[i]
		}
	}
	t.Fatalf("no %s event among %v", typ, s.evs)
	return audit.Event{}
}

func (s *switchSink) count(typ string) int {
	n := 0
	for _, x := range s.types() {
		if x == typ {
			n++
		}
	}
	return n
}

func wantPayload(t *testing.T, ev audit.Event, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if ev.Payload[k] != v {
			t.Fatalf("%s payload %s = %v, want %v (payload %v)", ev.EventType, k, ev.Payload[k], v, ev.Payload)
		}
	}
	if ev.EventID == "" || ev.ProducerID != "trusthandoff-serve" || ev.IdempotencyKey == "" || ev.Timestamp.IsZero() {
		t.Fatalf("%s event lacks its envelope fields: %+v", ev.EventType, ev)
	}
}

// TestChangesAreRecorded: revocations, approvals and registry changes made through the API
// each emit one event naming who asked; a change that grants authority is refused when it
// cannot be recorded, and one that takes authority away takes effect anyway (503).
func TestChangesAreRecorded(t *testing.T) {
	sink := &switchSink{}
	w := newWorld(t, func(c *server.Config) { c.Audit = sink })

	// Revocations: recorded after they take effect.
	if r := w.post(t, "/v1/revocations", w.carol.token, map[string]any{"agent_id": w.carol.id}); r.status != 200 {
		t.Fatalf("self-revocation: %d %s", r.status, r.body)
	}
	ev := sink.last(t, audit.Revocation)
	wantPayload(t, ev, map[string]any{"kind": "agent", "id": w.carol.id, "by": w.carol.id})
	if ev.CorrelationID != w.carol.id || ev.IdempotencyKey != "revocation:agent:"+w.carol.id {
		t.Fatalf("revocation event ids: %+v", ev)
	}
	sink.fail.Store(true)
	const capID = "0123456789abcdef0123456789abcdef"
	wantError(t, w.post(t, "/v1/revocations", adminToken, map[string]any{"capability_id": capID}), 503, server.CodeUnavailable)
	if _, revoked, err := w.store.Revoked(context.Background(), revocation.KindCapability, capID); err != nil || !revoked {
		t.Fatalf("a revocation the sink could not record was not made: %v %v", revoked, err)
	}
	sink.fail.Store(false)
	if r := w.post(t, "/v1/revocations", adminToken, map[string]any{"capability_id": capID}); r.status != 200 {
		t.Fatalf("retried revocation: %d %s", r.status, r.body)
	}
	wantPayload(t, sink.last(t, audit.Revocation), map[string]any{"kind": "capability", "id": capID, "by": "admin"})

	// Approvals: recorded before they are stored or returned.
	env := reviewed(t, w)
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	digest := d["packet_digest"].(string)
	sink.fail.Store(true)
	r := w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": digest, "decision": "approve"})
	wantError(t, r, 503, server.CodeUnavailable)
	if strings.Contains(string(r.body), `"approval"`) {
		t.Fatalf("an unrecorded approval was returned: %s", r.body)
	}
	sink.fail.Store(false)
	// Not stored either: the resent packet is still waiting.
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	if r := w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": digest, "decision": "approve"}); r.status != 201 {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	wantPayload(t, sink.last(t, audit.ApprovalRecorded), map[string]any{
		"packet_digest": digest, "approver": w.olga.id, "decision": "approve", "held": true, "by": w.olga.id})
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
	// An approval of a packet no one holds is recorded too (held false).
	other := strings.Repeat("ab", 32)
	if r := w.post(t, "/v1/approvals", w.oscar.token, map[string]any{"packet_digest": other, "decision": "deny"}); r.status != 201 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	wantPayload(t, sink.last(t, audit.ApprovalRecorded), map[string]any{"packet_digest": other, "decision": "deny", "held": false})

	// Registry: additions and rotations are recorded first, refused when they cannot be.
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pub := identity.NewKeySigner(k).Public()
	pemText := identity.PublicKeyPEM(pub)
	newID := identity.AgentIDOf(pub)
	sink.fail.Store(true)
	wantError(t, w.post(t, "/v1/registry/agents", adminToken, map[string]any{"public_key": pemText}), 503, server.CodeUnavailable)
	if r := w.get(t, "/v1/registry/agents", adminToken); strings.Contains(string(r.body), newID) {
		t.Fatalf("an unrecorded agent was added: %s", r.body)
	}
	sink.fail.Store(false)
	if r := w.post(t, "/v1/registry/agents", adminToken, map[string]any{"public_key": pemText, "roles": []string{"approver"}}); r.status != 201 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	sum := sha256.Sum256(pub)
	ev = sink.last(t, audit.RegistryChange)
	wantPayload(t, ev, map[string]any{"op": "add", "agent_id": newID, "key_sha256": hex.EncodeToString(sum[:]), "by": "admin"})
	if roles, _ := ev.Payload["roles"].([]string); len(roles) != 1 || roles[0] != "approver" {
		t.Fatalf("add event roles %v", ev.Payload["roles"])
	}

	k2, _ := identity.Generate()
	pub2 := identity.NewKeySigner(k2).Public()
	pem2 := identity.PublicKeyPEM(pub2)
	esc := "/v1/registry/agents/" + url.PathEscape(newID)
	before := sink.count(audit.RegistryChange)
	sink.fail.Store(true)
	wantError(t, w.post(t, esc+"/rotate", adminToken, map[string]any{"public_key": pem2}), 503, server.CodeUnavailable)
	for _, a := range w.get(t, "/v1/registry/agents", adminToken).json(t)["agents"].([]any) {
		if a := a.(map[string]any); a["agent_id"] == newID && len(a["keys"].([]any)) != 1 {
			t.Fatalf("an unrecorded rotation was made: %v", a)
		}
	}
	// A revocation of the agent takes effect although the sink fails.
	wantError(t, w.post(t, esc+"/revoke", adminToken, nil), 503, server.CodeUnavailable)
	if _, revoked, err := w.store.Revoked(context.Background(), revocation.KindAgent, newID); err != nil || !revoked {
		t.Fatalf("an agent revocation the sink could not record was not made: %v %v", revoked, err)
	}
	sink.fail.Store(false)
	if n := sink.count(audit.RegistryChange); n != before {
		t.Fatalf("%d registry_change events recorded while the sink failed", n-before)
	}
}

// TestUnrecordedDecisions: with the audit sink failing an acceptance is refused (503) and
// a rejection is answered, counted in trusthandoff_audit_unrecorded_total.
func TestUnrecordedDecisions(t *testing.T) {
	sink := &switchSink{}
	w := newWorld(t, func(c *server.Config) { c.Audit = sink })
	env := w.sign(t, w.alice, w.bob)
	sink.fail.Store(true)
	wantError(t, w.post(t, "/v1/verify", w.bob.token, env), 503, server.CodeUnavailable)
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "replay_detected") // the nonce was spent
	wantDecision(t, w.post(t, "/v1/verify", w.carol.token, env), "REJECT", "wrong_recipient")
	m := string(w.get(t, "/metrics", "").body)
	if !strings.Contains(m, "trusthandoff_audit_unrecorded_total 2\n") {
		t.Fatalf("metrics lack 2 unrecorded rejections:\n%s", m)
	}
	sink.fail.Store(false)
	if n := len(sink.types()); n != 0 {
		t.Fatalf("%d events recorded by a failing sink", n)
	}
}
