package verify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// memSink keeps events as the file log would store them (bounded, JSON round-tripped).
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memSink) Emit(_ context.Context, ev audit.Event) error {
	b, err := audit.MarshalLine(ev)
	if err != nil {
		return err
	}
	var back audit.Event
	if err := json.Unmarshal(b, &back); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, back)
	return nil
}

func (m *memSink) take() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev := m.events
	m.events = nil
	return ev
}

func types(evs []audit.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventType)
	}
	return out
}

// Rule: every decision's events keep the reference's header fields and five types, and
// their payload carries what forensics needs (spec/sentinel.md).
func TestEmittedEvents(t *testing.T) {
	type tc struct {
		name string
		// build returns the envelope and the verifier options; it may verify other
		// envelopes first (their events are dropped).
		build func(t *testing.T, f *fixture, v func(...Option) *Verifier) ([]byte, []Option)
		want  []string       // event types, in order
		has   map[string]any // payload entries (JSON-decoded values)
		lacks []string       // payload keys that must be absent
	}
	hasAll := []string{"packet_id", "decision", "reason", "detail", "from_agent", "to_agent", "nonce", "task_id",
		"actions", "issued_at", "expires_at", "chain_depth", "requires_review"}
	cases := []tc{
		{
			name: "accepted",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				return seal(t, draft(f.alice, f.bob), f.alice.s, nil), nil
			},
			want: []string{audit.PacketAccepted},
			has: map[string]any{"decision": Accept, "reason": "ok", "signing_rule": "0.4", "chain_depth": 0.0,
				"actions": []any{"read_tickets"}, "issued_at": "2026-04-01T12:00:00Z", "expires_at": "2026-04-01T12:15:00Z",
				"risk_level": "read", "requires_review": false, "task_id": "task-1"},
			lacks: []string{"capability_ids", "capability_ids_claimed", "approvals", "denied", "recipient", "dry_run", "flags"},
		},
		{
			name: "accepted under a two-link chain, AI-generated",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				root, leaf := twoLinks(t, f)
				p := draft(f.bob, f.carol)
				tok := leaf.Token()
				p.CapabilityToken = &tok
				p.AIProvenance = &canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "source", Value: canonical.Value{Kind: canonical.String, Str: "gpt"}}}}
				return seal(t, p, f.bob.s, []string{root.Token(), tok}), nil
			},
			want:  []string{audit.PacketAccepted, audit.AIGeneratedPayload},
			has:   map[string]any{"chain_depth": 2.0, "flags": []any{FlagAIGenerated}},
			lacks: []string{"capability_ids_claimed"},
		},
		{
			name: "wrong recipient",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				return seal(t, draft(f.alice, f.bob), f.alice.s, nil), []Option{WithRecipient(f.carol.id)}
			},
			want:  []string{audit.PacketRejected, audit.WrongRecipient},
			has:   map[string]any{"reason": "wrong_recipient"},
			lacks: []string{"signing_rule", "packet_digest"},
		},
		{
			name: "replayed",
			build: func(t *testing.T, f *fixture, v func(...Option) *Verifier) ([]byte, []Option) {
				env := seal(t, draft(f.alice, f.bob), f.alice.s, nil)
				if d := v().VerifyAt(context.Background(), env, t0); !d.Accepted() {
					t.Fatalf("first delivery: %+v", d)
				}
				return env, nil
			},
			want: []string{audit.PacketRejected, audit.ReplayDetected},
			has:  map[string]any{"reason": "replay_detected"},
		},
		{
			name: "capability revoked",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				root, leaf := twoLinks(t, f)
				f.revoked.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindCapability, ID: root.CapabilityID, At: t0})
				p := draft(f.bob, f.carol)
				tok := leaf.Token()
				p.CapabilityToken = &tok
				return seal(t, p, f.bob.s, []string{root.Token(), tok}), nil
			},
			want:  []string{audit.PacketRejected, audit.CapabilityStale},
			has:   map[string]any{"reason": "capability_revoked", "chain_depth": 2.0},
			lacks: []string{"capability_ids"},
		},
		{
			name: "denied by an attached approval",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				p := draft(f.alice, f.bob)
				p.Constraints = &packet.Constraints{RequiresHumanReview: true}
				if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
					t.Fatal(err)
				}
				return envelope(t, p, nil, f.approve(t, f.olga, p, approval.Deny)), nil
			},
			want: []string{audit.PacketRejected, audit.ApprovalDenied},
			has:  map[string]any{"reason": "policy_denied", "denied": "attached", "requires_review": true},
		},
		{
			name: "denied earlier, resent without the deny",
			build: func(t *testing.T, f *fixture, v func(...Option) *Verifier) ([]byte, []Option) {
				p := draft(f.alice, f.bob)
				p.Constraints = &packet.Constraints{RequiresHumanReview: true}
				if err := p.Sign(f.alice.s, packet.Rule04); err != nil {
					t.Fatal(err)
				}
				v().VerifyAt(context.Background(), envelope(t, p, nil, f.approve(t, f.olga, p, approval.Deny)), t0)
				return envelope(t, p, nil, f.approve(t, f.oscar, p, approval.Approve)), nil
			},
			want: []string{audit.PacketRejected, audit.ApprovalDenied},
			has:  map[string]any{"reason": "policy_denied", "denied": "recorded"},
		},
		{
			name: "dry run",
			build: func(t *testing.T, f *fixture, _ func(...Option) *Verifier) ([]byte, []Option) {
				return seal(t, draft(f.alice, f.bob), f.alice.s, nil), nil
			},
			want: []string{audit.PacketAccepted},
			has:  map[string]any{"dry_run": true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			sink := &memSink{}
			mk := func(opts ...Option) *Verifier {
				return f.verifier(t, append([]Option{WithAudit(sink, "node-1")}, opts...)...)
			}
			env, opts := c.build(t, f, mk)
			sink.take()
			req := Request{At: t0.Add(30 * time.Second), DryRun: c.name == "dry run"}
			d := mk(opts...).VerifyRequest(context.Background(), env, req)
			evs := sink.take()
			if !slices.Equal(types(evs), c.want) {
				t.Fatalf("events %v, want %v (decision %+v)", types(evs), c.want, d)
			}
			ids := map[string]bool{}
			for _, e := range evs {
				if e.EventID == "" || ids[e.EventID] || e.ProducerID != "node-1" || e.CorrelationID != d.PacketID ||
					e.IdempotencyKey == "" || !e.Timestamp.Equal(t0.Add(30*time.Second)) {
					t.Errorf("header of %s: %+v", e.EventType, e)
				}
				ids[e.EventID] = true
				for _, k := range hasAll {
					if _, ok := e.Payload[k]; !ok {
						t.Errorf("%s: payload lacks %q: %v", e.EventType, k, e.Payload)
					}
				}
				for k, want := range c.has {
					if got, _ := json.Marshal(e.Payload[k]); string(got) != string(must(json.Marshal(want))) {
						t.Errorf("%s: payload %q = %s, want %v", e.EventType, k, got, want)
					}
				}
				for _, k := range c.lacks {
					if _, ok := e.Payload[k]; ok {
						t.Errorf("%s: payload has %q: %v", e.EventType, k, e.Payload[k])
					}
				}
			}
			pl := evs[0].Payload
			if pl["packet_id"] != d.PacketID || pl["nonce"] != d.Envelope.Packet.Nonce ||
				pl["from_agent"] != d.Envelope.Packet.FromAgent || pl["to_agent"] != d.Envelope.Packet.ToAgent {
				t.Errorf("payload does not name the packet: %v", pl)
			}
			if _, ok := pl["signing_rule"]; ok {
				want, err := approval.Digest(d.Envelope.Packet, d.Rule)
				if err != nil || pl["packet_digest"] != hex.EncodeToString(want[:]) {
					t.Errorf("packet_digest %v, want %x", pl["packet_digest"], want)
				}
			}
		})
	}
}

// Rule: a verified chain is named root first; a rejected envelope's links are named as
// claimed, and an approval list names each approver.
func TestEmittedCapabilitiesAndApprovals(t *testing.T) {
	f := newFixture(t)
	sink := &memSink{}
	v := f.verifier(t, WithAudit(sink, ""))
	root, leaf := twoLinks(t, f)
	p := draft(f.bob, f.carol)
	tok := leaf.Token()
	p.CapabilityToken = &tok
	p.Constraints = &packet.Constraints{RequiresHumanReview: true}
	if err := p.Sign(f.bob.s, packet.Rule04); err != nil {
		t.Fatal(err)
	}
	a := f.approve(t, f.olga, p, approval.Approve)
	d := v.VerifyAt(context.Background(), envelope(t, p, []string{root.Token(), tok}, a), t0.Add(time.Second))
	if !d.Accepted() {
		t.Fatalf("%+v", d)
	}
	pl := sink.take()[0].Payload
	if got := must(json.Marshal(pl["capability_ids"])); string(got) != string(must(json.Marshal([]string{root.CapabilityID, leaf.CapabilityID}))) {
		t.Errorf("capability_ids %s", got)
	}
	wantA := []map[string]string{{"approval_id": a.ApprovalID, "approver": f.olga.id, "decision": "approve"}}
	if got := must(json.Marshal(pl["approvals"])); string(got) != string(must(json.Marshal(wantA))) {
		t.Errorf("approvals %s, want %s", got, must(json.Marshal(wantA)))
	}

	// The same envelope at another recipient: rejected, links named as claimed.
	v = f.verifier(t, WithAudit(sink, ""), WithRecipient(f.alice.id))
	d = v.VerifyAt(context.Background(), envelope(t, p, []string{root.Token(), tok}, a), t0.Add(time.Second))
	if d.Reason != reason.WrongRecipient {
		t.Fatalf("%+v", d)
	}
	pl = sink.take()[0].Payload
	if got := must(json.Marshal(pl["capability_ids_claimed"])); string(got) != string(must(json.Marshal([]string{root.CapabilityID, leaf.CapabilityID}))) {
		t.Errorf("capability_ids_claimed %s", got)
	}
	if pl["recipient"] != f.alice.id {
		t.Errorf("recipient %v", pl["recipient"])
	}
}

// Rule: an unparsable envelope still yields a packet_rejected event with the reference's
// four payload fields and nothing taken from the envelope.
func TestEmittedMalformed(t *testing.T) {
	f := newFixture(t)
	sink := &memSink{}
	d := f.verifier(t, WithAudit(sink, "")).VerifyAt(context.Background(), []byte(`{"packet":`), t0)
	evs := sink.take()
	if d.Reason != reason.MalformedEnvelope || !slices.Equal(types(evs), []string{audit.PacketRejected}) {
		t.Fatalf("%+v %v", d, types(evs))
	}
	var keys []string
	for k := range evs[0].Payload {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"decision", "detail", "packet_id", "reason"}) {
		t.Errorf("payload keys %v", keys)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// twoLinks is alice → bob → carol, the leaf narrowed to read_tickets.
func twoLinks(t *testing.T, f *fixture) (*capability.Capability, *capability.Capability) {
	root := f.grant(t, f.alice, f.bob, []string{"read_tickets", "search_kb"}, time.Hour)
	return root, derive(t, root, f.bob, f.carol, []string{"read_tickets"})
}
