package server_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/server"
)

func TestVerifyDecisions(t *testing.T) {
	w := newWorld(t)
	env := w.sign(t, w.alice, w.bob)

	// A forged copy (signature broken) and a copy sent to the wrong gate burn nothing.
	forged := bytes.Replace(env, []byte("summarize tickets"), []byte("summarize tickets!"), 1)
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, forged), "REJECT", "invalid_signature")
	wantDecision(t, w.post(t, "/v1/verify", w.carol.token, env), "REJECT", "wrong_recipient")
	// A dry run consumes nothing either.
	d := wantDecision(t, w.post(t, "/v1/verify?dry_run=1", w.bob.token, env), "ACCEPT", "ok")
	if d["dry_run"] != true {
		t.Fatalf("dry_run = %v", d["dry_run"])
	}
	d = wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
	if d["dry_run"] != false || d["signing_rule"] != "0.4" || len(d["packet_digest"].(string)) != 64 {
		t.Fatalf("decision fields: %v", d)
	}
	if flags, ok := d["flags"].([]any); !ok || len(flags) != 0 {
		t.Fatalf("flags = %#v, want []", d["flags"])
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "replay_detected")
	wantDecision(t, w.post(t, "/v1/verify?dry_run=true", w.bob.token, env), "REJECT", "replay_detected")
}

func TestVerifyRequestErrors(t *testing.T) {
	w := newWorld(t)
	env := w.sign(t, w.alice, w.bob)
	big := append([]byte(`{"packet":"`), bytes.Repeat([]byte("a"), 2<<20)...)
	cases := []struct {
		name, path, token, ct string
		body                  []byte
		status                int
		code                  string
	}{
		{"no token", "/v1/verify", "", "application/json", env, 401, server.CodeUnauthorized},
		{"unknown token", "/v1/verify", "thk_forged", "application/json", env, 401, server.CodeUnauthorized},
		{"admin token", "/v1/verify", adminToken, "application/json", env, 403, server.CodeForbidden},
		{"text/plain", "/v1/verify", w.bob.token, "text/plain", env, 415, server.CodeUnsupportedMedia},
		{"no content type", "/v1/verify", w.bob.token, "", env, 415, server.CodeUnsupportedMedia},
		{"too large", "/v1/verify", w.bob.token, "application/json", big, 413, server.CodeTooLarge},
		{"not JSON", "/v1/verify", w.bob.token, "application/json", []byte("{nope"), 400, server.CodeMalformed},
		{"empty", "/v1/verify", w.bob.token, "application/json", nil, 400, server.CodeMalformed},
		{"bad dry_run", "/v1/verify?dry_run=maybe", w.bob.token, "application/json", env, 400, server.CodeBadRequest},
		{"bad wait", "/v1/verify?wait=soon", w.bob.token, "application/json", env, 400, server.CodeBadRequest},
		{"negative wait", "/v1/verify?wait=-1s", w.bob.token, "application/json", env, 400, server.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, w.do(t, "POST", tc.path, tc.token, tc.ct, tc.body), tc.status, tc.code)
		})
	}
	// None of them consumed the nonce.
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
	// The wrong method and unknown paths answer JSON too.
	wantError(t, w.get(t, "/v1/verify", w.bob.token), 405, server.CodeMethodNotAllowed)
	wantError(t, w.get(t, "/v1/nothing", w.bob.token), 404, server.CodeNotFound)
}

func TestOpenVerifyBindsNoRecipient(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.OpenVerify = true })
	env := w.sign(t, w.alice, w.bob)
	wantDecision(t, w.post(t, "/v1/verify", "", env), "ACCEPT", "ok")
	// A token still binds its agent, and a bad token is still refused.
	wantDecision(t, w.post(t, "/v1/verify", w.carol.token, w.sign(t, w.alice, w.bob)), "REJECT", "wrong_recipient")
	wantError(t, w.post(t, "/v1/verify", "thk_forged", env), 401, server.CodeUnauthorized)
}

// failingStore fails every lookup: the server must answer 503, never ACCEPT.
type failingStore struct{ server.Store }

var errDown = errors.New("store down")

func (failingStore) Record(context.Context, []byte, time.Time) (bool, error) { return false, errDown }
func (failingStore) Revoked(context.Context, revocation.Kind, string) (revocation.Entry, bool, error) {
	return revocation.Entry{}, false, errDown
}
func (failingStore) Seen(context.Context, []byte) (bool, error) { return false, errDown }

func TestVerifyStoreUnavailable(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.Store = failingStore{c.Store} })
	r := w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob))
	wantError(t, r, 503, server.CodeUnavailable)
	wantError(t, w.get(t, "/readyz", ""), 503, server.CodeUnavailable)
	if r := w.get(t, "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := w.get(t, "/metrics", ""); r.status != 200 || !strings.Contains(string(r.body), "trusthandoff_store_errors_total 2") {
		t.Fatalf("metrics %d:\n%s", r.status, r.body)
	}
}

func TestVerifyHoldsHandoffsThatNeedApproval(t *testing.T) {
	w := newWorld(t)
	env := w.sign(t, w.alice, w.bob, packet.WithConstraints(packet.Constraints{RequiresHumanReview: true}))
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "human_review_required")
	items, err := w.store.List(context.Background())
	if err != nil || len(items) != 1 || items[0].ID != d["packet_digest"] {
		t.Fatalf("pending = %v, %v; want the packet digest %v", items, err, d["packet_digest"])
	}
	// A dry run holds nothing new and consumes nothing.
	wantDecision(t, w.post(t, "/v1/verify?dry_run=1", w.bob.token, env), "REJECT", "human_review_required")
}

func TestProbes(t *testing.T) {
	w := newWorld(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := w.get(t, p, ""); r.status != 200 {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, w.sign(t, w.alice, w.bob)), "ACCEPT", "ok")
	r := w.get(t, "/metrics", "")
	for _, want := range []string{`trusthandoff_decisions_total{decision="ACCEPT",reason="ok"} 1`, "trusthandoff_verify_duration_seconds_count 1"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
