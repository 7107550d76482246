package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/redistest"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/server"
	redisstore "github.com/trusthandoff/trusthandoff-go/store/redis"
)

// cluster is three sidecars on loopback sharing one real redis-server, each with its own
// registry (parsed from the same file contents, as nodes reading one shared file have),
// its own Redis store and its own HTTP server.
type cluster struct {
	redis   *redistest.Server
	nodes   []*clusterNode
	bob     *agent   // the recipient: every node verifies as bob (his token)
	senders []*agent // registered senders; each revocation test uses one
}

type clusterNode struct {
	srv   *server.Server
	store *redisstore.Store
	ts    *httptest.Server
}

func newCluster(t *testing.T, nodes, senders int) *cluster {
	t.Helper()
	rs := redistest.Start(t)
	c := &cluster{redis: rs, bob: newAgent(t)}
	reg := registry.New()
	for range senders {
		a := newAgent(t)
		if _, err := reg.Add("", a.pub(), nil, nil); err != nil {
			t.Fatal(err)
		}
		c.senders = append(c.senders, a)
	}
	if _, err := reg.Add("", c.bob.pub(), nil, nil); err != nil {
		t.Fatal(err)
	}
	regFile, err := reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tokens := server.Tokens{server.HashToken(c.bob.token): c.bob.id}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for range nodes {
		nodeReg, err := registry.Parse(regFile)
		if err != nil {
			t.Fatal(err)
		}
		// The store's defaults (500 ms per operation, the subscription pinged after 1 s of
		// silence and stale after 3 s), as the serve command uses them.
		st, err := redisstore.Open(redisstore.Config{Addr: rs.Addr})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Registry: nodeReg, Store: st, Tokens: tokens, PendingPoll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		go srv.WatchRevocations(ctx)
		n := &clusterNode{srv: srv, store: st, ts: httptest.NewServer(srv)}
		t.Cleanup(func() { n.ts.Close(); srv.Close(); st.Close() })
		c.nodes = append(c.nodes, n)
	}
	// A node answers once its revocation subscription has synced: until then it fails
	// closed (503), which TestClusterRedisDownFailsClosed covers.
	for i, n := range c.nodes {
		waitFor(t, fmt.Sprintf("node %d ready", i), func() bool { return n.status(t, "/readyz") == http.StatusOK })
	}
	return c
}

func (c *cluster) envelope(t testing.TB, from *agent) []byte {
	t.Helper()
	env, err := packet.Build(from.s, c.bob.id, "summarize tickets", packet.WithActions("read_tickets"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verdict is one answer of POST /v1/verify: the status and, for 200, the decision.
type verdict struct {
	status           int
	decision, reason string
	errCode          string
}

func (n *clusterNode) verify(t testing.TB, token string, body []byte, query string) verdict {
	t.Helper()
	req, err := http.NewRequest("POST", n.ts.URL+"/v1/verify"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := n.ts.Client().Do(req)
	if err != nil {
		t.Errorf("POST /v1/verify: %v", err)
		return verdict{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var a struct {
		Decision, Reason string
		Error            struct{ Code string }
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Errorf("answer %d is not JSON: %s", res.StatusCode, raw)
	}
	return verdict{res.StatusCode, a.Decision, a.Reason, a.Error.Code}
}

func (n *clusterNode) status(t testing.TB, path string) int {
	t.Helper()
	res, err := n.ts.Client().Get(n.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestClusterExactlyOneAccept sends one envelope to every node at once, several times per
// node: exactly one of all the answers is ACCEPT, every other is a replay.
func TestClusterExactlyOneAccept(t *testing.T) {
	c := newCluster(t, 3, 1)
	const perNode = 4
	for round := range 25 {
		body := c.envelope(t, c.senders[0])
		answers := make(chan verdict, len(c.nodes)*perNode)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, n := range c.nodes {
			for range perNode {
				wg.Go(func() { <-start; answers <- n.verify(t, c.bob.token, body, "") })
			}
		}
		close(start)
		wg.Wait()
		close(answers)
		accepts := 0
		for v := range answers {
			switch {
			case v.status == 200 && v.decision == "ACCEPT":
				accepts++
			case v.status == 200 && v.decision == "REJECT" && v.reason == "replay_detected":
			default:
				t.Fatalf("round %d: answer %+v", round, v)
			}
		}
		if accepts != 1 {
			t.Fatalf("round %d: %d ACCEPTs of one envelope across %d nodes, want exactly 1", round, accepts, len(c.nodes))
		}
	}
}

// TestClusterRevocationPropagates revokes a sender through one node and measures how long
// the other nodes take to reject it (dry runs of fresh envelopes, polled). Every node must
// reject it in the end and never accept it again; the delays are logged (p50, p99 and
// max) for BENCHMARKS.md.
func TestClusterRevocationPropagates(t *testing.T) {
	const rounds = 15
	c := newCluster(t, 3, rounds)
	var delays []time.Duration
	for i, sender := range c.senders {
		for _, n := range c.nodes {
			if v := n.verify(t, c.bob.token, c.envelope(t, sender), "?dry_run=1"); v.decision != "ACCEPT" {
				t.Fatalf("sender %d before its revocation: %+v", i, v)
			}
		}
		t0 := time.Now()
		if err := c.nodes[0].store.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: sender.id, At: t0}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range c.nodes[1:] {
			wg.Go(func() {
				deadline := t0.Add(10 * time.Second) // a correctness bound, not the 1 s target
				for {
					v := n.verify(t, c.bob.token, c.envelope(t, sender), "?dry_run=1")
					if v.decision == "REJECT" && v.reason == "agent_revoked" {
						mu.Lock()
						delays = append(delays, time.Since(t0))
						mu.Unlock()
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("sender %d: a node still answers %+v 10 s after the revocation", i, v)
						return
					}
				}
			})
		}
		wg.Wait()
		// Once rejected, rejected everywhere, including by the node that revoked.
		for j, n := range c.nodes {
			if v := n.verify(t, c.bob.token, c.envelope(t, sender), ""); v.decision != "REJECT" || v.reason != "agent_revoked" {
				t.Fatalf("sender %d on node %d after propagation: %+v", i, j, v)
			}
		}
	}
	slices.Sort(delays)
	q := func(p float64) time.Duration { return delays[min(len(delays)-1, int(p*float64(len(delays))))] }
	t.Logf("revocation propagation over %d samples: p50 %v, p99 %v, max %v", len(delays), q(0.5), q(0.99), delays[len(delays)-1])
}

// TestClusterRedisDownFailsClosed kills Redis: every node answers 503 to verifications
// and readiness probes (never ACCEPT), and every node recovers when Redis comes back,
// without a restart of the sidecars; a revocation made before the outage still holds
// after it, though the new Redis started empty.
func TestClusterRedisDownFailsClosed(t *testing.T) {
	c := newCluster(t, 3, 2)
	revoked, live := c.senders[0], c.senders[1]
	if err := c.nodes[0].store.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: revoked.id, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		waitFor(t, "the revocation on every node", func() bool {
			return n.verify(t, c.bob.token, c.envelope(t, revoked), "?dry_run=1").reason == "agent_revoked"
		})
		if v := n.verify(t, c.bob.token, c.envelope(t, live), ""); v.decision != "ACCEPT" {
			t.Fatalf("before the outage: %+v", v)
		}
	}

	c.redis.Kill()
	accepted := map[string]bool{} // envelopes answered ACCEPT during the outage: none
	var outage [][]byte
	for i := range 30 {
		n := c.nodes[i%len(c.nodes)]
		body := c.envelope(t, live)
		outage = append(outage, body)
		v := n.verify(t, c.bob.token, body, "")
		if v.decision == "ACCEPT" {
			accepted[string(body)] = true
			t.Errorf("node %d accepted while Redis is down", i%len(c.nodes))
		}
		if v.status != http.StatusServiceUnavailable {
			t.Errorf("node %d answered %+v while Redis is down, want 503", i%len(c.nodes), v)
		}
		if s := n.status(t, "/readyz"); s != http.StatusServiceUnavailable {
			t.Errorf("node %d /readyz = %d while Redis is down", i%len(c.nodes), s)
		}
		if s := n.status(t, "/healthz"); s != http.StatusOK {
			t.Errorf("node %d /healthz = %d: the process is alive", i%len(c.nodes), s)
		}
	}

	c.redis.Restart()
	for i, n := range c.nodes {
		waitFor(t, fmt.Sprintf("node %d ready after the restart", i), func() bool { return n.status(t, "/readyz") == http.StatusOK })
	}
	// The revocation survives: the nodes wrote back what the empty Redis lost.
	for i, n := range c.nodes {
		if v := n.verify(t, c.bob.token, c.envelope(t, revoked), ""); v.reason != "agent_revoked" {
			t.Fatalf("node %d after the restart: revoked sender answered %+v", i, v)
		}
	}
	// Fresh envelopes verify again, exactly once across the cluster; those refused during
	// the outage burned no nonce, so each is accepted once now.
	for _, body := range append(outage, c.envelope(t, live)) {
		accepts := 0
		for _, n := range c.nodes {
			if v := n.verify(t, c.bob.token, body, ""); v.decision == "ACCEPT" {
				accepts++
			} else if v.reason != "replay_detected" {
				t.Fatalf("after the restart: %+v", v)
			}
		}
		if accepts != 1 {
			t.Fatalf("%d ACCEPTs of one envelope after the restart, want 1", accepts)
		}
	}
}

// waitFor polls cond until it holds, failing after 15 s (a bound for a loaded machine;
// the conditions hold within about a second).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
