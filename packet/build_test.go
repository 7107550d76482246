package packet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

var bt0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

type buildAgent struct {
	key ed25519.PrivateKey
	s   *identity.KeySigner
	id  string
}

func newBuildAgent(seed byte) buildAgent {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	s := identity.NewKeySigner(key)
	return buildAgent{key, s, identity.AgentIDOf(s.Public())}
}

type buildWorld struct {
	alice, bob, carol buildAgent
	reg               *registry.Registry
}

func newBuildWorld(t *testing.T) *buildWorld {
	t.Helper()
	w := &buildWorld{alice: newBuildAgent(1), bob: newBuildAgent(2), carol: newBuildAgent(3), reg: registry.New()}
	for _, a := range []buildAgent{w.alice, w.bob, w.carol} {
		if _, err := w.reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// verifyAt runs the whole pipeline on env's wire bytes at instant at.
func (w *buildWorld) verifyAt(t *testing.T, env *packet.Envelope, at time.Time, opts ...verify.Option) *verify.Decision {
	t.Helper()
	wire, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return at }
	v, err := verify.New(w.reg, replay.NewMemory(replay.MemoryConfig{Now: clock}), append(opts, verify.WithClock(clock))...)
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(context.Background(), wire)
}

func wantBuildError(t *testing.T, err error, field string) {
	t.Helper()
	var be *packet.BuildError
	if !errors.As(err, &be) || !errors.Is(err, packet.ErrInvalidHandoff) {
		t.Fatalf("err = %v, want a *BuildError for %s", err, field)
	}
	if be.Field != field {
		t.Fatalf("field %q (%v), want %q", be.Field, err, field)
	}
}

func obj(t *testing.T, text string) canonical.Value {
	t.Helper()
	v, err := canonical.Parse([]byte(text), canonical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBuildRiskBasedTTL(t *testing.T) {
	w := newBuildWorld(t)
	cases := []struct {
		name     string
		opts     []packet.BuildOption
		risk     string
		ttl      int64
		strictOK bool
	}{
		{"no actions", nil, "read", 900, true},
		{"read actions", []packet.BuildOption{packet.WithActions("read_tickets", "draft_reply")}, "read", 900, true},
		{"one write action", []packet.BuildOption{packet.WithActions("read_tickets", "send_email")}, "write", 120, true},
		{"write action, upper case", []packet.BuildOption{packet.WithActions("DELETE_user")}, "write", 120, true},
		{"declared write", []packet.BuildOption{packet.WithActions("read_tickets"), packet.WithRisk("write")}, "write", 120, true},
		// a sender cannot label a write as a read: the window is the write TTL
		{"declared read over a write action", []packet.BuildOption{packet.WithActions("send_email"), packet.WithRisk("read")}, "read", 120, true},
		{"explicit shorter ttl", []packet.BuildOption{packet.WithActions("send_email"), packet.WithTTL(30 * time.Second)}, "write", 30, true},
		{"explicit longer ttl", []packet.BuildOption{packet.WithActions("send_email"), packet.WithTTL(time.Hour)}, "write", 3600, false},
		{"custom policy", []packet.BuildOption{packet.WithActions("send_email"), packet.WithTimePolicy(packet.TimePolicy{
			Levels: []packet.RiskLevel{{Name: "read", TTL: 60 * time.Second}, {Name: "write", TTL: 10 * time.Second}}})}, "write", 10, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := packet.Build(w.alice.s, w.bob.id, "Handle ticket 4821", append(c.opts, packet.WithIssuedAt(bt0))...)
			if err != nil {
				t.Fatal(err)
			}
			p := env.Packet
			if *p.RiskLevel != c.risk || *p.TTLSeconds != c.ttl || p.ExpiresAt.Micros-p.IssuedAt.Micros != c.ttl*1e6 {
				t.Fatalf("risk %s ttl %d window %dµs, want %s %d", *p.RiskLevel, *p.TTLSeconds, p.ExpiresAt.Micros-p.IssuedAt.Micros, c.risk, c.ttl)
			}
			if p.IssuedAt.Micros != bt0.UnixMicro() || p.FromAgent != w.alice.id || p.ToAgent != w.bob.id {
				t.Fatalf("issued %v from %s to %s", p.IssuedAt.Time(), p.FromAgent, p.ToAgent)
			}
			if d := w.verifyAt(t, env, bt0.Add(time.Second)); !d.Accepted() {
				t.Fatalf("default mode: %s %s", d.Reason, d.Detail)
			}
			d := w.verifyAt(t, env, bt0.Add(time.Second), verify.WithTimePolicy(packet.TimePolicy{Strict: true}))
			if d.Accepted() != c.strictOK {
				t.Fatalf("strict mode: %s %s", d.Reason, d.Detail)
			}
		})
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	w := newBuildWorld(t)
	huge := `{"blob":"` + strings.Repeat("x", canonical.DefaultMaxBytes) + `"}`
	cases := []struct {
		name   string
		to     string
		intent string
		opts   []packet.BuildOption
		field  string
	}{
		{"empty to", "", "x", nil, "to_agent"},
		{"to without prefix", "bob", "x", nil, "to_agent"},
		{"to is a key file", "bob.key.pub", "x", nil, "to_agent"},
		{"to is an unexpanded variable", "$BOB", "x", nil, "to_agent"},
		{"to is the prefix alone", "agent:", "x", nil, "to_agent"},
		{"to with a space", "agent:iaecbyn Y6DtD2i1", "x", nil, "to_agent"},
		{"to with a trailing newline", w.bob.id + "\n", "x", nil, "to_agent"},
		{"to in quotes", `"` + w.bob.id + `"`, "x", nil, "to_agent"},
		{"to is a PEM", identity.PublicKeyPEM(w.bob.s.Public()), "x", nil, "to_agent"},
		{"to with a full-width colon", "agent\uff1abob", "x", nil, "to_agent"},
		{"to too long", "agent:" + strings.Repeat("a", 129), "x", nil, "to_agent"},
		{"agent id with a space", w.bob.id, "x", []packet.BuildOption{packet.WithAgentID("agent:al ice")}, "from_agent"},
		{"empty intent", w.bob.id, "", nil, "intent"},
		{"intent not UTF-8", w.bob.id, "\xff", nil, "intent"},
		{"context array", w.bob.id, "x", []packet.BuildOption{packet.WithContext(obj(t, `[1,2]`))}, "context"},
		{"context string", w.bob.id, "x", []packet.BuildOption{packet.WithContext(obj(t, `"x"`))}, "context"},
		{"context null", w.bob.id, "x", []packet.BuildOption{packet.WithContext(canonical.Value{})}, "context"},
		{"context too deep", w.bob.id, "x", []packet.BuildOption{packet.WithContext(canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "d", Value: deepValue(70)}}})}, "context"},
		{"context string not UTF-8", w.bob.id, "x", []packet.BuildOption{packet.WithContext(canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "k", Value: canonical.Value{Kind: canonical.String, Str: "\xc3"}}}})}, "context"},
		{"envelope over 1 MiB", w.bob.id, "x", []packet.BuildOption{packet.WithContext(obj2(t, huge))}, "envelope"},
		{"envelope over a smaller receiver limit", w.bob.id, "x", []packet.BuildOption{packet.WithContext(obj(t, `{"blob":"`+strings.Repeat("x", 5000)+`"}`)), packet.WithLimits(packet.Limits{MaxBytes: 4096})}, "envelope"},
		{"empty action", w.bob.id, "x", []packet.BuildOption{packet.WithActions("read", "")}, "permissions.allowed_actions"},
		{"action with a comma", w.bob.id, "x", []packet.BuildOption{packet.WithActions("read,send_email")}, "permissions.allowed_actions"},
		{"negative max tool calls", w.bob.id, "x", []packet.BuildOption{packet.WithMaxToolCalls(-1)}, "permissions.max_tool_calls"},
		{"unknown risk", w.bob.id, "x", []packet.BuildOption{packet.WithRisk("critical")}, "risk_level"},
		{"zero ttl", w.bob.id, "x", []packet.BuildOption{packet.WithTTL(0)}, "ttl_seconds"},
		{"sub-second ttl", w.bob.id, "x", []packet.BuildOption{packet.WithTTL(500 * time.Millisecond)}, "ttl_seconds"},
		{"fractional ttl", w.bob.id, "x", []packet.BuildOption{packet.WithTTL(1500 * time.Millisecond)}, "ttl_seconds"},
		{"negative ttl", w.bob.id, "x", []packet.BuildOption{packet.WithTTL(-time.Minute)}, "ttl_seconds"},
		{"window past year 9999", w.bob.id, "x", []packet.BuildOption{packet.WithIssuedAt(time.Date(9998, 12, 31, 23, 0, 0, 0, time.UTC)), packet.WithTTL(time.Duration(1<<62) / time.Second * time.Second)}, "ttl_seconds"},
		{"issued before year 1", w.bob.id, "x", []packet.BuildOption{packet.WithIssuedAt(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))}, "issued_at"},
		{"unknown rule", w.bob.id, "x", []packet.BuildOption{packet.WithRule("0.5")}, "signature_algo"},
		{"ai provenance without source", w.bob.id, "x", []packet.BuildOption{packet.WithAIProvenance(obj(t, `{"model":"m"}`))}, "ai_provenance"},
		{"ai provenance with empty source", w.bob.id, "x", []packet.BuildOption{packet.WithAIProvenance(obj(t, `{"source":""}`))}, "ai_provenance"},
		{"ai provenance array", w.bob.id, "x", []packet.BuildOption{packet.WithAIProvenance(obj(t, `["source"]`))}, "ai_provenance"},
		{"negative depth", w.bob.id, "x", []packet.BuildOption{packet.WithProvenance(packet.Provenance{DelegationDepth: -1})}, "provenance"},
		{"negative runtime", w.bob.id, "x", []packet.BuildOption{packet.WithConstraints(packet.Constraints{MaxRuntimeSeconds: ptr(int64(-1))})}, "constraints"},
		{"empty task id", w.bob.id, "x", []packet.BuildOption{packet.WithTaskID("")}, "task_id"},
		{"goal not UTF-8", w.bob.id, "x", []packet.BuildOption{packet.WithGoal("\xfe")}, "goal"},
		{"memory ref not UTF-8", w.bob.id, "x", []packet.BuildOption{packet.WithMemoryRefs("ok", "\xfe")}, "memory_refs"},
		{"nil capability", w.bob.id, "x", []packet.BuildOption{packet.WithCapabilities(nil)}, "capabilities"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := packet.Build(w.alice.s, c.to, c.intent, c.opts...)
			if env != nil {
				t.Fatal("an envelope came back with an error")
			}
			wantBuildError(t, err, c.field)
		})
	}
}

func obj2(t *testing.T, text string) canonical.Value {
	t.Helper()
	v, err := canonical.Parse([]byte(text), canonical.Limits{MaxBytes: 2 * canonical.DefaultMaxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func deepValue(n int) canonical.Value {
	v := canonical.Value{Kind: canonical.Int, Str: "1"}
	for range n {
		v = canonical.Value{Kind: canonical.Array, Arr: []canonical.Value{v}}
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// chain is alice → bob (root) → carol (leaf).
type chain struct {
	root, leaf *capability.Capability
}

func newChain(t *testing.T, w *buildWorld, rootCons, leafCons *capability.Constraints) chain {
	t.Helper()
	root, err := capability.Issue(w.alice.s, w.bob.id, capability.Permissions{AllowedActions: []string{"read_tickets", "search_kb", "send_email"}, MaxToolCalls: ptr(int64(10))}, rootCons, bt0, bt0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := capability.Derive(root, w.bob.s, w.carol.id, capability.Permissions{AllowedActions: []string{"read_tickets", "search_kb"}, MaxToolCalls: ptr(int64(5))}, leafCons, bt0, bt0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return chain{root, leaf}
}

func TestBuildUnderCapabilities(t *testing.T) {
	w := newBuildWorld(t)
	eu := "eu"
	c := newChain(t, w, &capability.Constraints{DataBoundary: &eu}, &capability.Constraints{DataBoundary: &eu, MaxRuntimeSeconds: ptr(int64(60))})
	plain := newChain(t, w, nil, nil)
	other := newChain(t, w, nil, nil) // an unrelated chain of the same agents
	build := func(signer buildAgent, to string, opts ...packet.BuildOption) (*packet.Envelope, error) {
		return packet.Build(signer.s, to, "Triage the queue", append(opts, packet.WithIssuedAt(bt0.Add(time.Minute)))...)
	}
	t.Run("limits inherited", func(t *testing.T) {
		env, err := build(w.bob, w.carol.id, packet.WithCapabilities(c.root, c.leaf))
		if err != nil {
			t.Fatal(err)
		}
		p := env.Packet
		if got := p.Permissions.AllowedActions; len(got) != 2 || got[0] != "read_tickets" || got[1] != "search_kb" {
			t.Fatalf("actions %q, want the leaf's", got)
		}
		if p.Permissions.MaxToolCalls == nil || *p.Permissions.MaxToolCalls != 5 {
			t.Fatalf("max_tool_calls %v, want the leaf's 5", p.Permissions.MaxToolCalls)
		}
		k := p.Constraints
		if k == nil || k.DataBoundary == nil || *k.DataBoundary != "eu" || k.MaxRuntimeSeconds == nil || *k.MaxRuntimeSeconds != 60 {
			t.Fatalf("constraints %+v, want the leaf's", k)
		}
		if *p.CapabilityToken != c.leaf.Token() || len(env.Capabilities) != 2 || env.Capabilities[0] != c.root.Token() || env.Capabilities[1] != c.leaf.Token() {
			t.Fatal("the envelope must carry the chain root first and the packet the leaf's token")
		}
	})
	t.Run("accepted by the receiver", func(t *testing.T) {
		env, err := build(w.bob, w.carol.id, packet.WithCapabilities(plain.root, plain.leaf), packet.WithActions("search_kb"))
		if err != nil {
			t.Fatal(err)
		}
		if d := w.verifyAt(t, env, bt0.Add(2*time.Minute), verify.WithRequireCapability()); !d.Accepted() {
			t.Fatalf("%s %s", d.Reason, d.Detail)
		}
		if *env.Packet.Permissions.MaxToolCalls != 5 {
			t.Fatal("max_tool_calls must be inherited when not set")
		}
	})
	t.Run("review inherited from the root", func(t *testing.T) {
		rc := newChain(t, w, &capability.Constraints{RequiresHumanReview: true}, nil)
		env, err := build(w.bob, w.carol.id, packet.WithCapabilities(rc.root, rc.leaf), packet.WithConstraints(packet.Constraints{MaxRuntimeSeconds: ptr(int64(5))}))
		if err != nil {
			t.Fatal(err)
		}
		if k := env.Packet.Constraints; !k.RequiresHumanReview || *k.MaxRuntimeSeconds != 5 {
			t.Fatalf("constraints %+v: review must be inherited, the runtime kept", k)
		}
		if d := w.verifyAt(t, env, bt0.Add(2*time.Minute)); d.Reason != reason.HumanReviewRequired {
			t.Fatalf("%s %s, want human_review_required (not action_not_authorized)", d.Reason, d.Detail)
		}
	})
	t.Run("a root alone travels as the token only", func(t *testing.T) {
		env, err := build(w.alice, w.bob.id, packet.WithCapabilities(plain.root))
		if err != nil {
			t.Fatal(err)
		}
		if env.Capabilities != nil || *env.Packet.CapabilityToken != plain.root.Token() || *env.Packet.Permissions.MaxToolCalls != 10 {
			t.Fatalf("capabilities %v", env.Capabilities)
		}
		if d := w.verifyAt(t, env, bt0.Add(2*time.Minute)); !d.Accepted() {
			t.Fatalf("%s %s", d.Reason, d.Detail)
		}
	})
	refused := []struct {
		name   string
		signer buildAgent
		to     string
		opts   []packet.BuildOption
		field  string
	}{
		{"max tool calls above the leaf", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf), packet.WithMaxToolCalls(6)}, "permissions.max_tool_calls"},
		{"action outside the leaf", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf), packet.WithActions("read_tickets", "send_email")}, "permissions.allowed_actions"},
		{"action differing in case", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf), packet.WithActions("Read_Tickets")}, "permissions.allowed_actions"},
		{"other data boundary", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(c.root, c.leaf), packet.WithConstraints(packet.Constraints{DataBoundary: ptr("us")})}, "constraints"},
		{"longer runtime", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(c.root, c.leaf), packet.WithConstraints(packet.Constraints{MaxRuntimeSeconds: ptr(int64(61))})}, "constraints"},
		{"leaf first", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.leaf, plain.root)}, "capabilities"},
		{"leaf without its root", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.leaf)}, "capabilities"},
		{"leaf of another root", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, other.leaf)}, "capabilities"},
		{"root twice", w.alice, w.bob.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.root)}, "capabilities"},
		{"capability for another subject", w.bob, w.alice.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf)}, "capabilities"},
		{"sender is not the leaf's issuer", w.alice, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf)}, "capabilities"},
		{"rotated id is not the leaf's issuer", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf), packet.WithAgentID("agent:someone-else")}, "capabilities"},
		{"expired leaf", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(plain.root, plain.leaf), packet.WithIssuedAt(bt0.Add(30 * time.Minute))}, "capabilities"},
		{"empty token", w.bob, w.carol.id, []packet.BuildOption{packet.WithCapabilities(linkFunc(func() packet.Link { return packet.Link{CapabilityID: "x"} }))}, "capabilities"},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			_, err := packet.Build(r.signer.s, r.to, "x", append([]packet.BuildOption{packet.WithIssuedAt(bt0.Add(time.Minute))}, r.opts...)...)
			wantBuildError(t, err, r.field)
		})
	}
}

type linkFunc func() packet.Link

func (f linkFunc) Link() packet.Link { return f() }

// TestBuildAgreesWithTheReceiver builds under every combination of chain and packet
// constraints: whatever Build signs, the receiver's own authorization accepts.
func TestBuildAgreesWithTheReceiver(t *testing.T) {
	w := newBuildWorld(t)
	eu, us := "eu", "us"
	var consts = []*packet.Constraints{nil, {}, {RequiresHumanReview: true}, {DataBoundary: &eu}, {DataBoundary: &us},
		{MaxRuntimeSeconds: ptr(int64(30))}, {MaxRuntimeSeconds: ptr(int64(90))}, {RequiresHumanReview: true, DataBoundary: &eu, MaxRuntimeSeconds: ptr(int64(30))}}
	built, refused := 0, 0
	for _, rc := range consts {
		for _, lc := range consts {
			root, err := capability.Issue(w.alice.s, w.bob.id, capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: ptr(int64(4))}, rc, bt0, bt0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := capability.Derive(root, w.bob.s, w.carol.id, capability.Permissions{AllowedActions: []string{"read"}, MaxToolCalls: ptr(int64(4))}, lc, bt0, bt0.Add(time.Hour))
			if err != nil {
				continue // an escalating leaf
			}
			for _, pc := range consts {
				opts := []packet.BuildOption{packet.WithIssuedAt(bt0), packet.WithCapabilities(root, leaf)}
				if pc != nil {
					opts = append(opts, packet.WithConstraints(*pc))
				}
				env, err := packet.Build(w.bob.s, w.carol.id, "x", opts...)
				if err != nil {
					wantBuildError(t, err, "constraints")
					refused++
					continue
				}
				built++
				p := env.Packet
				chain := []*capability.Capability{root, leaf}
				if err := capability.Authorize(leaf, p.Permissions.AllowedActions, p.Permissions.MaxToolCalls); err != nil {
					t.Errorf("root %+v leaf %+v packet %+v: %v", rc, lc, pc, err)
				}
				if err := capability.AuthorizeConstraints(chain, p.Constraints); err != nil {
					t.Errorf("root %+v leaf %+v packet %+v: %v", rc, lc, pc, err)
				}
			}
		}
	}
	if built == 0 || refused == 0 {
		t.Fatalf("built %d, refused %d: the table exercises nothing", built, refused)
	}
}

func TestBuildAfterKeyRotation(t *testing.T) {
	w := newBuildWorld(t)
	alice2 := newBuildAgent(9)
	rotatedAt := bt0.Add(-time.Hour)
	if err := w.reg.Rotate(w.alice.id, alice2.s.Public(), rotatedAt, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		signer buildAgent
		opts   []packet.BuildOption
		want   reason.Code
	}{
		{"new key with the registered id", alice2, []packet.BuildOption{packet.WithAgentID(w.alice.id)}, reason.OK},
		{"new key with its own id", alice2, nil, reason.UnknownAgent},
		{"old key after the overlap", w.alice, nil, reason.PublicKeyMismatch},
		{"new key claiming another agent", alice2, []packet.BuildOption{packet.WithAgentID(w.bob.id)}, reason.PublicKeyMismatch},
		{"registered id given for its own key", w.bob, []packet.BuildOption{packet.WithAgentID(w.bob.id)}, reason.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := packet.Build(c.signer.s, w.carol.id, "x", append(c.opts, packet.WithIssuedAt(bt0))...)
			if err != nil {
				t.Fatal(err)
			}
			if d := w.verifyAt(t, env, bt0.Add(time.Second)); d.Reason != c.want {
				t.Fatalf("%s %s, want %s", d.Reason, d.Detail, c.want)
			}
		})
	}
	t.Run("capability issued after rotation", func(t *testing.T) {
		root, err := capability.Delegate(alice2.s, w.bob.id, []string{"read"}, capability.WithIssuerAgent(w.alice.id), capability.WithIssuedAt(bt0))
		if err != nil {
			t.Fatal(err)
		}
		env, err := packet.Build(alice2.s, w.bob.id, "x", packet.WithAgentID(w.alice.id), packet.WithCapabilities(root), packet.WithIssuedAt(bt0))
		if err != nil {
			t.Fatal(err)
		}
		if d := w.verifyAt(t, env, bt0.Add(time.Second)); !d.Accepted() {
			t.Fatalf("%s %s", d.Reason, d.Detail)
		}
	})
}

func TestBuildLeavesInputsAlone(t *testing.T) {
	w := newBuildWorld(t)
	ctx := obj(t, `{"z":1,"a":{"y":2,"b":3}}`)
	before, _ := canonical.Marshal(&ctx, canonical.Wire())
	actions := []string{"read"}
	env, err := packet.Build(w.alice.s, w.bob.id, "x", packet.WithContext(ctx), packet.WithActions(actions...), packet.WithRule(packet.Rule033))
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := canonical.Marshal(&ctx, canonical.Wire()); string(after) != string(before) || ctx.Obj[0].Key != "z" {
		t.Fatal("Build changed the caller's context")
	}
	if rule, err := env.Packet.VerifySignature(w.alice.s.Public()); err != nil || rule != packet.Rule033 {
		t.Fatalf("rule %q, %v", rule, err)
	}
	env.Packet.Permissions.AllowedActions[0] = "changed"
	if actions[0] != "read" {
		t.Fatal("the packet shares the caller's actions")
	}
}

// badSigner returns a signature that does not verify.
type badSigner struct{ buildAgent }

func (b badSigner) Sign(msg []byte) ([]byte, error) { return make([]byte, ed25519.SignatureSize), nil }

type failingSigner struct{ buildAgent }

func (failingSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("hsm offline") }

type shortKeySigner struct{}

func (shortKeySigner) Public() ed25519.PublicKey   { return make([]byte, 31) }
func (shortKeySigner) Sign([]byte) ([]byte, error) { return nil, nil }

func TestBuildChecksTheSigner(t *testing.T) {
	w := newBuildWorld(t)
	cases := []struct {
		name   string
		signer identity.Signer
	}{
		{"nil", nil},
		{"short key", shortKeySigner{}},
		{"bad signature", badSigner{w.alice}},
		{"failing", failingSigner{w.alice}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := packet.Build(c.signer, w.bob.id, "x")
			if err == nil || env != nil || errors.Is(err, packet.ErrInvalidHandoff) {
				t.Fatalf("err = %v: a signer problem is not an invalid handoff", err)
			}
		})
	}
}

func (a buildAgent) Public() ed25519.PublicKey { return a.s.Public() }

func TestCheckAgentID(t *testing.T) {
	good := []string{"agent:iaecbyn/Y6DtD2i1", "agent:FHF30eHC1r1UnSm+", "agent:x", "agent:bob", "agent:billing-bot.eu_1", "agent:team:ops@acme", "agent:" + strings.Repeat("a", 128)}
	bad := []string{"", "agent", "agent:", "Agent:bob", "AGENT:bob", " agent:bob", "agent:bob ", "agent:b\tob", "agent:bob\n",
		"agent:bob\x00", `"agent:bob"`, "agent:bob'", "agent:b\u00e9b", "agent:\u200bbob", "agent\uff1abob", "bob.key.pub",
		"$BOB", "-----BEGIN PUBLIC KEY-----", "agent:" + strings.Repeat("a", 129), "agent:\xff"}
	for _, id := range good {
		if err := packet.CheckAgentID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := packet.CheckAgentID(id); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
}

func FuzzCheckAgentID(f *testing.F) {
	for _, s := range []string{"agent:iaecbyn/Y6DtD2i1", "agent:", "", "agent:\xff", "agent: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := packet.CheckAgentID(id)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("message of %d bytes: the input must be truncated", len(err.Error()))
			}
			return
		}
		if !strings.HasPrefix(id, "agent:") || strings.ContainsAny(id, " \t\r\n\"'\\") || len(id) > 6+128 {
			t.Fatalf("%q accepted", id)
		}
		for i := 0; i < len(id); i++ {
			if id[i] >= 0x80 || id[i] < 0x21 {
				t.Fatalf("%q accepted", id)
			}
		}
	})
}
