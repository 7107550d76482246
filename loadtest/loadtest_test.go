package loadtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

type agents struct {
	reg        *registry.Registry
	alice, bob *identity.KeySigner
	bobID      string
}

func newAgents(t testing.TB) *agents {
	t.Helper()
	a := &agents{reg: registry.New()}
	for _, s := range []**identity.KeySigner{&a.alice, &a.bob} {
		k, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		*s = identity.NewKeySigner(k)
		if _, err := a.reg.Add(identity.AgentIDOf(k.Public().(ed25519.PublicKey)), k.Public().(ed25519.PublicKey), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	a.bobID = identity.AgentIDOf(a.bob.Public())
	return a
}

func TestCheckLoopback(t *testing.T) {
	cases := []struct {
		target string
		ok     bool
		notLB  bool
	}{
		{"http://127.0.0.1:8080/v1/verify", true, false},
		{"http://127.3.4.5/", true, false},
		{"https://[::1]:443/x", true, false},
		{"http://localhost:1/", true, false},
		{"http://10.0.0.1/", false, true},
		{"http://example.com/", false, true},
		{"http://[::ffff:8.8.8.8]/", false, true},
		{"http://0.0.0.0:80/", false, true},
		{"ftp://127.0.0.1/", false, false},
		{"http://user:pw@127.0.0.1/", false, false},
		{"127.0.0.1:80", false, false},
		{"::bad", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			err := CheckLoopback(tc.target)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckLoopback(%q) = %v, want ok=%v", tc.target, err, tc.ok)
			}
			if err == nil {
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) || errors.Is(err, ErrNotLoopback) != tc.notLB {
				t.Fatalf("error %v: ConfigError %v, ErrNotLoopback %v (want %v)", err, ce != nil, errors.Is(err, ErrNotLoopback), tc.notLB)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Fatalf("error echoes credentials: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ok := "http://127.0.0.1:1/"
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"duration too long", Config{Target: ok, Duration: MaxDuration + 1}, "Duration"},
		{"negative duration", Config{Target: ok, Duration: -1}, "Duration"},
		{"too many connections", Config{Target: ok, Connections: MaxConnections + 1}, "Connections"},
		{"negative connections", Config{Target: ok, Connections: -1}, "Connections"},
		{"negative timeout", Config{Target: ok, Timeout: -1}, "Timeout"},
		{"negative requests", Config{Target: ok, MaxRequests: -1}, "MaxRequests"},
		{"remote target", Config{Target: "http://192.0.2.1/"}, "Target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(context.Background(), tc.cfg)
			var ce *ConfigError
			if res != nil || !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("Run = %v, %v; want a ConfigError for %s", res, err, tc.field)
			}
		})
	}
}

func TestRunDistinctEnvelopesAllAccepted(t *testing.T) {
	a := newAgents(t)
	bodies, err := Envelopes(a.alice, a.bobID, "load", 300, packet.WithActions("read_tickets"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, b := range bodies {
		env, err := packet.ParseEnvelope(b, packet.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[env.Packet.Nonce] || env.Packet.ToAgent != a.bobID {
			t.Fatalf("nonce %s repeated or recipient %s", env.Packet.Nonce, env.Packet.ToAgent)
		}
		seen[env.Packet.Nonce] = true
	}
	srv := httptest.NewServer(NewBaseline(a.reg))
	defer srv.Close()
	var progress atomic.Int64
	res, err := Run(context.Background(), Config{
		Target: srv.URL + "/v1/verify", Bodies: bodies, Connections: 8,
		Progress: func(Progress) { progress.Add(1) }, ProgressInterval: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.Errors != 0 || !res.BodiesExhausted ||
		res.Decisions["ACCEPT"] != 300 || res.Reasons["ok"] != 300 || res.Status["200"] != 300 {
		t.Fatalf("result %+v", res)
	}
	if res.RequestsPerSecond <= 0 || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P99 {
		t.Fatalf("latency %+v, %v req/s", res.Latency, res.RequestsPerSecond)
	}
}

func TestRunReuseBoundedByMaxRequests(t *testing.T) {
	var hits atomic.Int64
	var sawToken atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") == "Bearer s3cret" && r.Header.Get("Content-Type") == "application/json" {
			sawToken.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"store_unavailable","message":"x"}}`))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, Bodies: [][]byte{[]byte(`{}`)}, Reuse: true, MaxRequests: 57, Connections: 5, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 57 || hits.Load() != 57 || res.Status["503"] != 57 || res.ErrorCodes["store_unavailable"] != 57 || len(res.Decisions) != 0 {
		t.Fatalf("result %+v, hits %d", res, hits.Load())
	}
	if !sawToken.Load() {
		t.Fatal("the bearer token or content type was not sent")
	}
}

func TestRunGetWithoutBodyEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Content-Type") != "" {
			w.WriteHeader(http.StatusBadRequest)
		}
		if hits.Add(1) == 100 {
			cancel() // the run ends with its context, long before MaxRequests
		}
	}))
	defer srv.Close()
	res, err := Run(ctx, Config{Target: srv.URL, Connections: 2, MaxRequests: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Status["200"] != res.Requests || res.BodiesExhausted {
		t.Fatalf("result %+v", res)
	}
}

func TestRunUnavailableTarget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := "http://" + l.Addr().String() + "/"
	l.Close()
	res, err := Run(context.Background(), Config{Target: target, MaxRequests: 20, Connections: 2})
	if !errors.Is(err, ErrUnavailable) || res == nil || res.Errors != 20 || res.Requests != 0 || len(res.ErrorSamples) == 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

func TestRunDoesNotFollowRedirects(t *testing.T) {
	var remote atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { remote.Store(true) }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer srv.Close()
	res, err := Run(context.Background(), Config{Target: srv.URL, MaxRequests: 3, Connections: 1})
	if err != nil || res.Status["302"] != 3 || remote.Load() {
		t.Fatalf("Run = %+v, %v (redirect followed: %v)", res, err, remote.Load())
	}
}

func TestBaseline(t *testing.T) {
	a := newAgents(t)
	good, err := Envelopes(a.alice, a.bobID, "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(good[0], []byte(`"intent": "x"`), []byte(`"intent": "y"`), 1)
	if bytes.Equal(tampered, good[0]) {
		t.Fatal("tampering did not change the envelope")
	}
	stranger, _ := identity.Generate()
	unknown, err := Envelopes(identity.NewKeySigner(stranger), a.bobID, "x", 1)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, ctype string
		body                []byte
		status              int
		decision, reason    string
	}{
		{"accept", "POST", "application/json", good[0], 200, "ACCEPT", "ok"},
		{"accept with charset", "POST", "application/json; charset=utf-8", good[0], 200, "ACCEPT", "ok"},
		{"tampered", "POST", "application/json", tampered, 200, "REJECT", "invalid_signature"},
		{"unknown sender", "POST", "application/json", unknown[0], 200, "REJECT", "unknown_agent"},
		{"not an envelope", "POST", "application/json", []byte(`{"packet":1}`), 400, "", ""},
		{"not json", "POST", "application/json", []byte(`hello`), 400, "", ""},
		{"wrong type", "POST", "text/plain", good[0], 415, "", ""},
		{"get", "GET", "", nil, 405, "", ""},
		{"too large", "POST", "application/json", bytes.Repeat([]byte(" "), MaxBaselineBody+1), 413, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/v1/verify", bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			NewBaseline(a.reg).ServeHTTP(rec, req)
			dec, rc, ec := parseAnswer(rec.Body.Bytes())
			if rec.Code != tc.status || dec != tc.decision || rc != tc.reason {
				t.Fatalf("%d %s %s (%s), want %d %s %s", rec.Code, dec, rc, rec.Body, tc.status, tc.decision, tc.reason)
			}
			if tc.status != 200 && ec == "" {
				t.Fatalf("error answer without a code: %s", rec.Body)
			}
		})
	}
}

func TestEnvelopesBounds(t *testing.T) {
	a := newAgents(t)
	for _, n := range []int{-1, MaxEnvelopes + 1} {
		if _, err := Envelopes(a.alice, a.bobID, "x", n); !errors.Is(err, ErrConfig) {
			t.Fatalf("Envelopes(%d) = %v", n, err)
		}
	}
	if out, err := Envelopes(a.alice, a.bobID, "x", 0); err != nil || len(out) != 0 {
		t.Fatalf("Envelopes(0) = %d, %v", len(out), err)
	}
	if _, err := Envelopes(a.alice, "not-an-agent", "x", 3); err == nil {
		t.Fatal("a bad recipient was signed")
	}
}

func TestParseAnswer(t *testing.T) {
	cases := []struct {
		in            string
		dec, rc, code string
	}{
		{`{"decision":"ACCEPT","reason":"ok","flags":[]}`, "ACCEPT", "ok", ""},
		{`{"error":{"code":"unauthorized","message":"m"}}`, "", "", "unauthorized"},
		{`{"error":null}`, "", "", ""},
		{`{"decision":5}`, "", "", ""},
		{`[1,2]`, "", "", ""},
		{``, "", "", ""},
		{`{"decision":"ACC`, "", "", ""},
	}
	for _, tc := range cases {
		d, r, c := parseAnswer([]byte(tc.in))
		if d != tc.dec || r != tc.rc || c != tc.code {
			t.Errorf("parseAnswer(%q) = %q %q %q", tc.in, d, r, c)
		}
	}
}
