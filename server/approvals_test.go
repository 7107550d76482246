package server_test

import (
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/server"
)

func reviewed(t testing.TB, w *world) []byte {
	return w.sign(t, w.alice, w.bob, packet.WithConstraints(packet.Constraints{RequiresHumanReview: true}))
}

// held waits until the server lists a handoff pending (a condition, not a timing).
func (w *world) held(t testing.TB, digest string) map[string]any {
	t.Helper()
	for i := 0; ; i++ {
		r := w.get(t, "/v1/approvals/pending", w.olga.token)
		if r.status != 200 {
			t.Fatalf("pending: %d %s", r.status, r.body)
		}
		for _, p := range r.json(t)["pending"].([]any) {
			if p := p.(map[string]any); p["packet_digest"] == digest {
				return p
			}
		}
		if i > 2000 {
			t.Fatalf("packet %s never became pending", digest)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestApprovalReleasesWaitingVerification(t *testing.T) {
	w := newWorld(t)
	env := reviewed(t, w)
	dry := wantDecision(t, w.post(t, "/v1/verify?dry_run=1", w.bob.token, env), "REJECT", "human_review_required")
	digest := dry["packet_digest"].(string)

	got := make(chan resp, 1)
	go func() { got <- w.post(t, "/v1/verify?wait=60s", w.bob.token, env) }()
	p := w.held(t, digest)
	if p["from_agent"] != w.alice.id || p["to_agent"] != w.bob.id || p["intent"] != "summarize tickets" {
		t.Fatalf("pending entry %v", p)
	}
	// Neither the receiver (no approver role) nor the admin may sign an approval.
	wantError(t, w.post(t, "/v1/approvals", w.bob.token, map[string]any{"packet_digest": digest, "decision": "approve"}), 403, server.CodeForbidden)
	wantError(t, w.post(t, "/v1/approvals", adminToken, map[string]any{"packet_digest": digest, "decision": "approve"}), 403, server.CodeForbidden)
	wantError(t, w.get(t, "/v1/approvals/pending", w.bob.token), 403, server.CodeForbidden)

	r := w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": digest, "decision": "approve", "note": "ok"})
	if r.status != 201 || r.json(t)["held"] != true {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	wantDecision(t, <-got, "ACCEPT", "ok")
	// Released: no longer pending, and the nonce is spent.
	if r := w.get(t, "/v1/approvals/pending", adminToken); len(r.json(t)["pending"].([]any)) != 0 {
		t.Fatalf("still pending: %s", r.body)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "replay_detected")
}

func TestApprovalReleasesOnResend(t *testing.T) {
	w := newWorld(t)
	env := reviewed(t, w)
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	digest := d["packet_digest"].(string)
	if r := w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": digest, "decision": "approve"}); r.status != 201 {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	// The agent sends the packet again, as it arrived (without the approval): released.
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
}

func TestDenyVetoesAndSticks(t *testing.T) {
	w := newWorld(t)
	env := reviewed(t, w)
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	digest := d["packet_digest"].(string)
	if r := w.post(t, "/v1/approvals", w.oscar.token, map[string]any{"packet_digest": digest, "decision": "deny"}); r.status != 201 {
		t.Fatalf("deny: %d %s", r.status, r.body)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "policy_denied")
	// An approval after the deny changes nothing.
	w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": digest, "decision": "approve"})
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "policy_denied")
}

func TestForwardedApprovals(t *testing.T) {
	w := newWorld(t)
	env := reviewed(t, w)
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	digest := d["packet_digest"].(string)
	dg, _ := hex.DecodeString(digest)
	sign := func(a *agent) json.RawMessage {
		ap, err := approval.New(a.s, [32]byte(dg), approval.Approve, time.Now(), time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		v := ap.Value()
		b, err := canonical.Marshal(&v, canonical.Wire())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Signed by the sender itself: refused, never stored.
	wantError(t, w.post(t, "/v1/approvals", w.carol.token, map[string]any{"approval": sign(w.alice)}), 422, "approval_invalid")
	wantError(t, w.post(t, "/v1/approvals", w.carol.token, map[string]any{"approval": "nope"}), 400, server.CodeInvalid)
	wantError(t, w.post(t, "/v1/approvals", w.carol.token, map[string]any{"approval": sign(w.olga), "decision": "approve"}), 400, server.CodeInvalid)
	wantError(t, w.post(t, "/v1/approvals", "", map[string]any{"approval": sign(w.olga)}), 401, server.CodeUnauthorized)
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	// A valid approval, forwarded by anyone authenticated, is attached.
	if r := w.post(t, "/v1/approvals", w.carol.token, map[string]any{"approval": sign(w.olga)}); r.status != 201 {
		t.Fatalf("forward: %d %s", r.status, r.body)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
}

func TestApprovalRequestErrors(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		body any
		code string
	}{
		{"bad digest", map[string]any{"packet_digest": "xyz", "decision": "approve"}, server.CodeInvalid},
		{"upper-case digest", map[string]any{"packet_digest": "AB" + string(make([]byte, 0)) + "0000000000000000000000000000000000000000000000000000000000000000"[:62], "decision": "approve"}, server.CodeInvalid},
		{"bad decision", map[string]any{"packet_digest": hex.EncodeToString(make([]byte, 32)), "decision": "maybe"}, server.CodeInvalid},
		{"bad ttl", map[string]any{"packet_digest": hex.EncodeToString(make([]byte, 32)), "decision": "approve", "ttl": 5}, server.CodeBadRequest},
		{"unknown field", map[string]any{"packet_digest": hex.EncodeToString(make([]byte, 32)), "decision": "approve", "x": 1}, server.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, w.post(t, "/v1/approvals", w.olga.token, tc.body), 400, tc.code)
		})
	}
	// Nothing held for the digest: signed and returned, not attached.
	r := w.post(t, "/v1/approvals", w.olga.token, map[string]any{"packet_digest": hex.EncodeToString(make([]byte, 32)), "decision": "approve"})
	if r.status != 201 || r.json(t)["held"] != false {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
