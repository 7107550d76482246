package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/server"
)

// FuzzHandler sends arbitrary requests (method, path and query, credentials, content type,
// body) through the real handler and checks the rules hostile traffic must not break:
//   - no panic and no 5xx other than 503;
//   - an ACCEPT only for a packet one of the world's agents really signed (no fuzzed
//     envelope is ever accepted), and each such packet at most once, whatever its
//     encoding (no replay through a re-spelled envelope);
//   - a request without a valid token changes nothing: the registry file image, the
//     agents' revocation status and the pending approvals stay as they were.
func FuzzHandler(f *testing.F) {
	w := newWorld(f, func(c *server.Config) { c.MaxWait = 5 * time.Millisecond })
	genuine := map[string]bool{} // packet ids of handoffs the world's agents signed
	seedEnvelope := func(from, to *agent, opts ...packet.BuildOption) []byte {
		b := w.sign(f, from, to, opts...)
		var p struct {
			Packet struct {
				PacketID string `json:"packet_id"`
			} `json:"packet"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			f.Fatal(err)
		}
		genuine[p.Packet.PacketID] = true
		return b
	}
	envBob := seedEnvelope(w.alice, w.bob)
	envCarol := seedEnvelope(w.alice, w.carol)
	envReview := seedEnvelope(w.alice, w.bob, packet.WithConstraints(packet.Constraints{RequiresHumanReview: true}))
	const (
		credNone = iota
		credBob
		credCarol
		credForged
		credAdmin
		credKinds
	)
	for _, s := range []struct {
		method, path string
		cred         uint8
		ctype        string
		body         []byte
	}{
		{"POST", "/v1/verify", credBob, "application/json", envBob},
		{"POST", "/v1/verify?dry_run=1", credCarol, "application/json", envCarol},
		{"POST", "/v1/verify?wait=1ms", credBob, "application/json", envReview},
		{"POST", "/v1/verify", credNone, "application/json", envBob},
		{"POST", "/v1/verify", credForged, "application/json", envBob},
		{"POST", "/v1/verify", credBob, "text/plain", envBob},
		{"POST", "/v1/handoffs", credBob, "application/json", []byte(`{"to":"` + w.carol.id + `","intent":"x","actions":["read_tickets"]}`)},
		{"POST", "/v1/capabilities", credBob, "application/json", []byte(`{"audience":"` + w.carol.id + `","actions":["read_tickets"]}`)},
		{"POST", "/v1/approvals", credNone, "application/json", []byte(`{"packet_digest":"00","decision":"approve"}`)},
		{"GET", "/v1/approvals/pending", credNone, "", nil},
		{"POST", "/v1/revocations", credNone, "application/json", []byte(`{"agent_id":"` + w.bob.id + `"}`)},
		{"POST", "/v1/revocations", credForged, "application/json", []byte(`{"agent_id":"` + w.bob.id + `"}`)},
		{"POST", "/v1/registry/agents/" + w.bob.id + "/revoke", credNone, "application/json", []byte(`{}`)},
		{"POST", "/v1/registry/agents", credForged, "application/json", []byte(`{"public_key":"x"}`)},
		{"GET", "/v1/validity/" + strings.Repeat("ab", 32), credBob, "", nil},
		{"GET", "/v1/revocations/stream", credBob, "", nil},
		{"POST", "/v1/receipts", credBob, "application/json", []byte(`{"envelope":` + string(envBob) + `,"status":"OK","outcome":"done"}`)},
		{"POST", "/v1/receipts/verify", credNone, "application/json", []byte(`{"receipt":{},"envelope":{}}`)},
		{"GET", "/v1/audit/export?since=1", credAdmin, "", nil},
		{"GET", "/../v1/registry/agents", credNone, "", nil},
		{"DELETE", "/v1/verify", credBob, "", nil},
		{"GET", "/healthz", credNone, "", nil},
	} {
		f.Add(s.method, s.path, s.cred, s.ctype, s.body)
	}

	accepted := map[string]bool{}
	f.Fuzz(func(t *testing.T, method, target string, cred uint8, ctype string, body []byte) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://sidecar"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		switch cred % credKinds {
		case credBob:
			req.Header.Set("Authorization", "Bearer "+w.bob.token)
		case credCarol:
			req.Header.Set("Authorization", "Bearer "+w.carol.token)
		case credForged:
			req.Header.Set("Authorization", "Bearer "+w.bob.token[:len(w.bob.token)-1]+"x")
		case credAdmin:
			req.Header.Set("Authorization", "Bearer "+adminToken)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		authenticated := cred%credKinds == credBob || cred%credKinds == credCarol || cred%credKinds == credAdmin
		var before string
		if !authenticated {
			before = stateImage(t, w)
		}

		rec := httptest.NewRecorder()
		w.srv.ServeHTTP(rec, req)

		if rec.Code >= 500 && rec.Code != 503 {
			t.Fatalf("%s %s: status %d: %s", method, target, rec.Code, rec.Body.Bytes())
		}
		var d struct {
			Decision string `json:"decision"`
			PacketID string `json:"packet_id"`
		}
		if rec.Code == 200 && json.Unmarshal(rec.Body.Bytes(), &d) == nil && d.Decision == "ACCEPT" && strings.HasPrefix(req.URL.Path, "/v1/verify") {
			if !genuine[d.PacketID] {
				t.Fatalf("accepted a packet no agent signed (%q): %s", d.PacketID, body)
			}
			dry := req.URL.Query().Get("dry_run")
			if dry == "" || dry == "0" || strings.EqualFold(dry, "f") || strings.EqualFold(dry, "false") {
				if accepted[d.PacketID] {
					t.Fatalf("packet %s accepted twice: %s", d.PacketID, body)
				}
				accepted[d.PacketID] = true
			}
		}
		if !authenticated {
			if after := stateImage(t, w); after != before {
				t.Fatalf("an unauthenticated %s %s changed the state:\nbefore %s\nafter  %s", method, target, before, after)
			}
		}
	})
}

// stateImage is what an unauthenticated request must not change: the registry, the
// revocation status of the world's agents and the pending approvals.
func stateImage(t *testing.T, w *world) string {
	t.Helper()
	reg, err := w.reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var b strings.Builder
	b.Write(reg)
	for _, a := range []*agent{w.alice, w.bob, w.carol, w.olga, w.oscar} {
		revoked, _, err := w.store.Revoked(ctx, revocation.KindAgent, a.id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n%s revoked=%v", a.id, revoked)
	}
	items, err := w.store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\npending=%d", len(items))
	for _, it := range items {
		fmt.Fprintf(&b, " %v", it)
	}
	return b.String()
}
