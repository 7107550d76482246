package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/server"
)

// The whole delegation through the API: alice grants bob a capability, signs a handoff
// under it through the server, bob verifies it; revoking the capability invalidates it.
func TestHandoffCapabilityRevocationValidity(t *testing.T) {
	w := newWorld(t)
	r := w.post(t, "/v1/capabilities", w.alice.token, map[string]any{"to": w.bob.id, "actions": []string{"read_tickets", "search"}, "max_tool_calls": 5, "ttl": "10m"})
	if r.status != 201 {
		t.Fatalf("capability: %d %s", r.status, r.body)
	}
	capa := r.json(t)
	r = w.post(t, "/v1/handoffs", w.alice.token, map[string]any{
		"to": w.bob.id, "intent": "triage", "actions": []string{"read_tickets"},
		"capabilities": []string{capa["token"].(string)}, "context": map[string]any{"ticket": 4821},
	})
	if r.status != 201 {
		t.Fatalf("handoff: %d %s", r.status, r.body)
	}
	h := r.json(t)
	env, _ := json.Marshal(h["envelope"])
	d := wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
	if d["packet_digest"] != h["packet_digest"] || d["packet_id"] != h["packet_id"] {
		t.Fatalf("verify %v vs handoff %v", d, h)
	}
	digest := h["packet_digest"].(string)
	if v := w.get(t, "/v1/validity/"+digest, w.bob.token).json(t); v["valid"] != true || v["reason"] != "ok" {
		t.Fatalf("validity %v", v)
	}
	wantError(t, w.get(t, "/v1/validity/"+strings.Repeat("0", 64), w.bob.token), 404, server.CodeNotFound)

	// Watch the stream, then revoke: bob (not the issuer) may not; alice, with the token, may.
	events := w.stream(t, w.carol.token)
	id := capa["capability_id"].(string)
	wantError(t, w.post(t, "/v1/revocations", w.bob.token, map[string]any{"capability_id": id}), 403, server.CodeForbidden)
	wantError(t, w.post(t, "/v1/revocations", w.bob.token, map[string]any{"capability_id": id, "token": capa["token"]}), 403, server.CodeForbidden)
	wantError(t, w.post(t, "/v1/revocations", w.bob.token, map[string]any{"agent_id": w.alice.id}), 403, server.CodeForbidden)
	wantError(t, w.post(t, "/v1/revocations", w.bob.token, map[string]any{"agent_id": w.alice.id, "capability_id": id}), 400, server.CodeInvalid)
	if r := w.post(t, "/v1/revocations", w.alice.token, map[string]any{"capability_id": id, "token": capa["token"]}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	ev := <-events
	if ev["kind"] != "capability" || ev["id"] != id {
		t.Fatalf("stream event %v", ev)
	}
	if v := w.get(t, "/v1/validity/"+digest, w.bob.token).json(t); v["valid"] != false || v["reason"] != "capability_revoked" {
		t.Fatalf("validity after revocation %v", v)
	}
	// A new handoff under the revoked capability is rejected.
	r = w.post(t, "/v1/handoffs", w.alice.token, map[string]any{"to": w.bob.id, "intent": "again", "capabilities": []string{capa["token"].(string)}})
	env, _ = json.Marshal(r.json(t)["envelope"])
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "capability_revoked")
}

// stream opens GET /v1/revocations/stream and delivers its events' data.
func (w *world) stream(t *testing.T, token string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", w.ts.URL+"/v1/revocations/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := w.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan map[string]any, 8)
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() { // the opening comment: the subscription is live
		t.Fatal("stream closed at once")
	}
	go func() {
		defer res.Body.Close()
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok && event == "revocation" {
				var m map[string]any
				if json.Unmarshal([]byte(d), &m) == nil {
					out <- m
				}
			}
		}
	}()
	return out
}

func TestSigningNeedsAHeldKey(t *testing.T) {
	w := newWorld(t, func(c *server.Config) { c.Signers = nil })
	wantError(t, w.post(t, "/v1/handoffs", w.alice.token, map[string]any{"to": w.bob.id, "intent": "x"}), 409, server.CodeNoKey)
	wantError(t, w.post(t, "/v1/capabilities", w.alice.token, map[string]any{"to": w.bob.id, "actions": []string{"a"}}), 409, server.CodeNoKey)
	wantError(t, w.post(t, "/v1/handoffs", adminToken, map[string]any{"to": w.bob.id, "intent": "x"}), 403, server.CodeForbidden)
	wantError(t, w.post(t, "/v1/handoffs", "", map[string]any{"to": w.bob.id, "intent": "x"}), 401, server.CodeUnauthorized)
}

func TestHandoffRequestErrors(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		body any
		code string
	}{
		{"bad to", map[string]any{"to": "bob", "intent": "x"}, server.CodeInvalid},
		{"no intent", map[string]any{"to": w.bob.id}, server.CodeInvalid},
		{"bad risk", map[string]any{"to": w.bob.id, "intent": "x", "risk": "huge"}, server.CodeInvalid},
		{"context not object", map[string]any{"to": w.bob.id, "intent": "x", "context": []int{1}}, server.CodeInvalid},
		{"bad capability", map[string]any{"to": w.bob.id, "intent": "x", "capabilities": []string{"junk"}}, server.CodeInvalid},
		{"unknown field", map[string]any{"to": w.bob.id, "intent": "x", "from": w.carol.id}, server.CodeBadRequest},
		{"wrong type", map[string]any{"to": w.bob.id, "intent": 5}, server.CodeBadRequest},
		{"bad ttl", map[string]any{"to": w.bob.id, "intent": "x", "ttl": "-5s"}, server.CodeBadRequest},
		{"trailing data", `{"to":"` + w.bob.id + `","intent":"x"} {}`, server.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, w.post(t, "/v1/handoffs", w.alice.token, tc.body), 400, tc.code)
		})
	}
}

func TestRegistryAdmin(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "reg.json")
	w := newWorld(t, func(c *server.Config) {
		data, err := c.Registry.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c.RegistryPath = path
	})
	dave := newAgent(t)
	pemText := identity.PublicKeyPEM(dave.pub())
	for _, tok := range []string{"", w.alice.token} {
		r := w.post(t, "/v1/registry/agents", tok, map[string]any{"public_key": pemText})
		if r.status != 401 && r.status != 403 {
			t.Fatalf("non-admin add: %d", r.status)
		}
	}
	r := w.post(t, "/v1/registry/agents", adminToken, map[string]any{"public_key": pemText, "roles": []string{"approver"}})
	if r.status != 201 || r.json(t)["agent_id"] != dave.id {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	reg, err := registry.Load(path)
	if err != nil || !reg.HasRole(dave.id, registry.RoleApprover) {
		t.Fatalf("the registry file lacks the new agent: %v", err)
	}
	wantError(t, w.post(t, "/v1/registry/agents", adminToken, map[string]any{"public_key": "junk"}), 400, server.CodeInvalid)
	wantError(t, w.post(t, "/v1/registry/agents", adminToken, map[string]any{"public_key": pemText, "roles": []string{"root"}}), 400, server.CodeInvalid)

	// Rotate alice (the id has a slash: percent-encoded in the path).
	next := newAgent(t)
	esc := "/v1/registry/agents/" + url.PathEscape(w.alice.id)
	if r := w.post(t, esc+"/rotate", adminToken, map[string]any{"public_key": identity.PublicKeyPEM(next.pub()), "overlap": "1m"}); r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	wantError(t, w.post(t, "/v1/registry/agents/"+url.PathEscape("agent:nobody")+"/rotate", adminToken, map[string]any{"public_key": pemText}), 404, server.CodeNotFound)
	// Revoke bob's sender alice: her handoffs are rejected from now on.
	env := w.sign(t, w.alice, w.bob)
	if r := w.post(t, esc+"/revoke", adminToken, map[string]any{}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "REJECT", "agent_revoked")
	list := w.get(t, "/v1/registry/agents", adminToken).json(t)["agents"].([]any)
	if len(list) != 6 {
		t.Fatalf("%d agents listed, want 6", len(list))
	}
	wantError(t, w.get(t, "/v1/registry/agents", w.alice.token), 403, server.CodeForbidden)
}

// Path tricks never reach a handler they do not name.
func TestPathTricks(t *testing.T) {
	w := newWorld(t)
	for _, p := range []string{"/v1/../v1/registry/agents", "/v1//registry/agents", "/V1/registry/agents", "/v1/registry/agents/", "/v1/registry/agents%2F..%2Fx/revoke"} {
		r := w.get(t, p, w.alice.token)
		if r.status == 200 {
			t.Errorf("%s: 200 for a non-admin: %s", p, r.body)
		}
	}
}

// A slow client that never finishes its headers is cut off by ReadHeaderTimeout: the
// connection closes (the test waits for that event, with no timing assertion).
func TestSlowClientCutOff(t *testing.T) {
	w := newWorld(t)
	hs := &http.Server{Handler: w.srv, ReadHeaderTimeout: 50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST /v1/verify HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept a half-sent request open")
			}
			return // closed by the server
		}
	}
}

// A flood of forged copies (bad signatures, other recipients) never burns the real nonce.
func TestForgedFloodBurnsNoNonce(t *testing.T) {
	w := newWorld(t)
	env := w.sign(t, w.alice, w.bob)
	forged := []byte(strings.Replace(string(env), "summarize tickets", "wire the money", 1))
	for range 200 {
		wantDecision(t, w.post(t, "/v1/verify", w.bob.token, forged), "REJECT", "invalid_signature")
	}
	for range 50 {
		wantDecision(t, w.post(t, "/v1/verify", w.carol.token, env), "REJECT", "wrong_recipient")
	}
	wantDecision(t, w.post(t, "/v1/verify", w.bob.token, env), "ACCEPT", "ok")
}
