package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/server"
)

type agent struct {
	s     *identity.KeySigner
	id    string
	token string
}

func newAgent(t testing.TB) *agent {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	tok, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return &agent{s: s, id: identity.AgentIDOf(s.Public()), token: tok}
}

func (a *agent) pub() ed25519.PublicKey { return a.s.Public() }

// world: alice, bob and carol are agents, olga and oscar approvers; every one has a token,
// and the server holds every key.
type world struct {
	alice, bob, carol, olga, oscar *agent
	admin                          string
	reg                            *registry.Registry
	store                          server.Store
	srv                            *server.Server
	ts                             *httptest.Server
	cfg                            server.Config
}

const adminToken = "admin-token-for-tests-0123456789"

func newWorld(t testing.TB, mod ...func(*server.Config)) *world {
	t.Helper()
	w := &world{alice: newAgent(t), bob: newAgent(t), carol: newAgent(t), olga: newAgent(t), oscar: newAgent(t), admin: adminToken}
	w.reg = registry.New()
	tokens := server.Tokens{}
	signers := map[string]identity.Signer{}
	for _, a := range []*agent{w.alice, w.bob, w.carol, w.olga, w.oscar} {
		var roles []string
		if a == w.olga || a == w.oscar {
			roles = []string{registry.RoleApprover}
		}
		if _, err := w.reg.Add("", a.pub(), roles, nil); err != nil {
			t.Fatal(err)
		}
		tokens[server.HashToken(a.token)] = a.id
		signers[a.id] = a.s
	}
	w.store = server.NewMemoryStore(nil)
	w.cfg = server.Config{
		Registry: w.reg, Store: w.store, Tokens: tokens, AdminToken: adminToken, Signers: signers,
		PendingPoll: 20 * time.Millisecond,
	}
	for _, m := range mod {
		m(&w.cfg)
	}
	srv, err := server.New(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	w.ts = httptest.NewServer(checked(t, srv))
	t.Cleanup(func() { srv.Close(); w.ts.Close() })
	return w
}

// sign builds a handoff from → to.
func (w *world) sign(t testing.TB, from, to *agent, opts ...packet.BuildOption) []byte {
	t.Helper()
	env, err := packet.Build(from.s, to.id, "summarize tickets", append([]packet.BuildOption{packet.WithActions("read_tickets")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%d): %v\n%s", r.status, err, r.body)
	}
	return m
}

// errCode returns the error code of an error body ("" when there is none).
func (r resp) errCode(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends a request; token "" sends no Authorization header.
func (w *world) do(t testing.TB, method, path, token, contentType string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest(method, w.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := w.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, b, res.Header}
}

func (w *world) post(t testing.TB, path, token string, body any) resp {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return w.do(t, "POST", path, token, "application/json", b)
}

func (w *world) get(t testing.TB, path, token string) resp {
	t.Helper()
	return w.do(t, "GET", path, token, "", nil)
}

func wantDecision(t testing.TB, r resp, decision, reason string) map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["decision"] != decision || m["reason"] != reason {
		t.Fatalf("got %v %v (%v), want %s %s", m["decision"], m["reason"], m["detail"], decision, reason)
	}
	return m
}

func wantError(t testing.TB, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode(t) != code {
		t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errCode(t), status, code, r.body)
	}
	if strings.Contains(string(r.body), adminToken) {
		t.Fatalf("the error body quotes a token: %s", r.body)
	}
}
