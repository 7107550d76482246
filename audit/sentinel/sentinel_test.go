package sentinel

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// logb builds records as verify writes them: a decision record, then its derived ones.
type logb struct{ recs []audit.Record }

type dec struct {
	from, to, reason string
	at               time.Duration // after t0
	packet           string
	extra            []string // derived event types
	payload          map[string]any
}

func (b *logb) add(d dec) []uint64 {
	typ, decision := audit.PacketRejected, "REJECT"
	if d.reason == "ok" {
		typ, decision = audit.PacketAccepted, "ACCEPT"
	}
	if d.packet == "" {
		d.packet = fmt.Sprintf("pkt-%d", len(b.recs)+1)
	}
	p := map[string]any{"packet_id": d.packet, "decision": decision, "reason": d.reason, "detail": "x",
		"from_agent": d.from, "to_agent": d.to, "chain_depth": float64(0),
		"issued_at": t0.Add(d.at).Format(time.RFC3339Nano), "expires_at": t0.Add(d.at + time.Hour).Format(time.RFC3339Nano)}
	for k, v := range d.payload {
		p[k] = v
	}
	var seqs []uint64
	for _, t := range append([]string{typ}, d.extra...) {
		seq := uint64(len(b.recs) + 1)
		b.recs = append(b.recs, audit.Record{Seq: seq, Event: audit.Event{
			EventID: fmt.Sprintf("ev-%d", seq), EventType: t, Timestamp: t0.Add(d.at),
			ProducerID: "test", CorrelationID: d.packet, Payload: p}})
		seqs = append(seqs, seq)
	}
	return seqs
}

// revoke appends a revocation record of kind id, revoked at t0+at (recorded at t0+at too).
func (b *logb) revoke(kind, id string, at time.Duration) []uint64 {
	seq := uint64(len(b.recs) + 1)
	ev := audit.RevocationEvent("test", kind, id, t0.Add(at), "admin")
	ev.EventID = fmt.Sprintf("ev-%d", seq)
	b.recs = append(b.recs, audit.Record{Seq: seq, Event: ev})
	return []uint64{seq}
}

func TestRules(t *testing.T) {
	type exp struct {
		rule  string
		agent string
		seqs  []uint64
	}
	tests := []struct {
		name  string
		build func(b *logb) []exp
		opts  []Option
	}{
		{"replay", func(b *logb) []exp {
			b.add(dec{from: "a", to: "b", reason: "ok", packet: "p1"})
			s := b.add(dec{from: "a", to: "b", reason: "replay_detected", packet: "p1", extra: []string{audit.ReplayDetected}})
			b.add(dec{from: "a", to: "b", reason: "replay_detected", packet: "p1", extra: []string{audit.ReplayDetected}, payload: map[string]any{"dry_run": true}})
			return []exp{{RuleReplay, "a", s}}
		}, nil},
		{"stale expired", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "capability_expired", extra: []string{audit.CapabilityStale}})
			return []exp{{RuleCapabilityStale, "a", s}}
		}, nil},
		{"revoked capability is revoked authority, not stale", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "capability_revoked", extra: []string{audit.CapabilityStale}})
			s2 := b.add(dec{from: "a", to: "b", reason: "agent_revoked", at: time.Second})
			return []exp{{RuleRevokedAuthority, "a", append(s, s2...)}}
		}, nil},
		{"accepted after revocation", func(b *logb) []exp {
			b.add(dec{from: "a", to: "b", reason: "ok"}) // before: fine
			r := b.revoke("agent", "a", time.Second)
			s := b.add(dec{from: "a", to: "b", reason: "ok", at: 1500 * time.Millisecond})
			b.add(dec{from: "a", to: "b", reason: "ok", at: 500 * time.Millisecond}) // made before, recorded after
			b.add(dec{from: "a", to: "b", reason: "agent_revoked", at: 2 * time.Second})
			s2 := b.add(dec{from: "a", to: "b", reason: "ok", at: 3 * time.Second})
			b.add(dec{from: "a", to: "b", reason: "ok", at: 4 * time.Second, payload: map[string]any{"dry_run": true}})
			b.add(dec{from: "c", to: "b", reason: "ok", at: 5 * time.Second}) // another agent
			return []exp{{RuleAcceptedRevoked, "a", append(append(r, s...), s2...)}, {RuleRevokedAuthority, "a", []uint64{5}}}
		}, nil},
		{"accepted under a revoked capability, twice revoked", func(b *logb) []exp {
			chain := map[string]any{"capability_ids": []any{"root", "mid"}}
			r := b.revoke("capability", "root", 0)
			b.revoke("capability", "root", time.Second) // a retried revocation: the first counts
			s := b.add(dec{from: "x", to: "y", reason: "ok", at: 2 * time.Second, payload: chain})
			b.add(dec{from: "x", to: "y", reason: "ok", at: 3 * time.Second, payload: map[string]any{"capability_ids": []any{"other"}}})
			b.add(dec{from: "x", to: "y", reason: "ok", at: 4 * time.Second, payload: map[string]any{"capability_ids": "root"}}) // wrong type: ignored
			return []exp{{RuleAcceptedRevoked, "x", append(r, s...)}}
		}, nil},
		{"overlap and ai", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "ok", extra: []string{audit.TokenOverlapUsed, audit.AIGeneratedPayload},
				payload: map[string]any{"flags": []any{"token_overlap_used", "ai_generated_payload"}}})
			return []exp{{RuleOverlapUsed, "a", s}, {RuleAIPayload, "a", s}}
		}, nil},
		{"signature burst", func(b *logb) []exp {
			var s []uint64
			for i := range 3 {
				s = append(s, b.add(dec{from: "m", to: "b", reason: "invalid_signature", at: time.Duration(i) * 10 * time.Second})...)
			}
			b.add(dec{from: "m", to: "b", reason: "invalid_signature", at: time.Hour})     // alone: no burst
			b.add(dec{from: "n", to: "b", reason: "public_key_mismatch", at: time.Second}) // one: no burst
			return []exp{{RuleSignatureBurst, "m", s}}
		}, nil},
		{"signature burst threshold", func(b *logb) []exp {
			s := b.add(dec{from: "m", to: "b", reason: "public_key_mismatch"})
			s = append(s, b.add(dec{from: "m", to: "b", reason: "invalid_signature", at: 5 * time.Second})...)
			return []exp{{RuleSignatureBurst, "m", s}}
		}, []Option{WithBurst(10*time.Second, 2)}},
		{"escalation", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "capability_escalation"})
			s = append(s, b.add(dec{from: "a", to: "b", reason: "action_not_authorized"})...)
			return []exp{{RuleEscalation, "a", s}}
		}, nil},
		{"approval invalid, denied", func(b *logb) []exp {
			s1 := b.add(dec{from: "a", to: "b", reason: "approval_invalid"})
			s2 := b.add(dec{from: "c", to: "b", reason: "policy_denied", extra: []string{audit.ApprovalDenied}, payload: map[string]any{"denied": "attached"}})
			return []exp{{RuleApprovalInvalid, "a", s1}, {RuleApprovalDenied, "c", s2}}
		}, nil},
		{"approval reused", func(b *logb) []exp {
			ap := []any{map[string]any{"approval_id": "ap1", "approver": "olga", "decision": "approve"}}
			// the same packet accepted, then replayed: one packet; then another packet
			b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{"approvals": ap, "packet_digest": "d1"}})
			b.add(dec{from: "a", to: "b", reason: "replay_detected", extra: []string{audit.ReplayDetected}, payload: map[string]any{"approvals": ap, "packet_digest": "d1"}, at: time.Second})
			b.add(dec{from: "a", to: "b", reason: "approval_invalid", payload: map[string]any{"approvals": ap, "packet_digest": "d2"}, at: 2 * time.Second})
			return []exp{{RuleReplay, "a", []uint64{2, 3}}, {RuleApprovalInvalid, "a", []uint64{4}}, {RuleApprovalReused, "a", []uint64{1, 2, 3, 4}}}
		}, nil},
		{"approval on one packet, replayed, is not reuse", func(b *logb) []exp {
			ap := []any{map[string]any{"approval_id": "ap1"}}
			b.add(dec{from: "a", to: "b", reason: "ok", packet: "p", payload: map[string]any{"approvals": ap}})
			s := b.add(dec{from: "a", to: "b", reason: "replay_detected", packet: "p", payload: map[string]any{"approvals": ap}})
			return []exp{{RuleReplay, "a", s}}
		}, nil},
		{"wrong recipient", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "wrong_recipient", extra: []string{audit.WrongRecipient}, payload: map[string]any{"recipient": "c"}})
			return []exp{{RuleWrongRecipient, "a", s}}
		}, nil},
		{"depth", func(b *logb) []exp {
			b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{"chain_depth": float64(3)}})
			s := b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{"chain_depth": float64(4)}})
			s = append(s, b.add(dec{from: "a", to: "b", reason: "depth_exceeded", payload: map[string]any{"chain_depth": float64(9)}})...)
			return []exp{{RuleDelegationDepth, "a", s}}
		}, nil},
		{"issued in future", func(b *logb) []exp {
			s := b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{"issued_at": t0.Add(31 * time.Second).Format(time.RFC3339)}})
			b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{"issued_at": t0.Add(29 * time.Second).Format(time.RFC3339)}})
			s = append(s, b.add(dec{from: "a", to: "b", reason: "issued_in_future"})...)
			return []exp{{RuleIssuedInFuture, "a", s}}
		}, nil},
		{"near expiry burst", func(b *logb) []exp {
			var s []uint64
			for i := range 3 {
				at := time.Duration(i) * time.Second
				s = append(s, b.add(dec{from: "a", to: "b", reason: "ok", at: at, payload: map[string]any{"expires_at": t0.Add(at + 2*time.Second).Format(time.RFC3339Nano)}})...)
			}
			b.add(dec{from: "a", to: "b", reason: "ok", at: 3 * time.Second}) // an hour left
			return []exp{{RuleNearExpiryBurst, "a", s}}
		}, nil},
		{"hostile payload types", func(b *logb) []exp {
			b.add(dec{from: "a", to: "b", reason: "ok", payload: map[string]any{
				"from_agent": []any{1}, "chain_depth": "deep", "flags": "x", "approvals": []any{"x", map[string]any{"approval_id": 7}},
				"issued_at": 5, "dry_run": "yes"}})
			b.recs = append(b.recs, audit.Record{Seq: 99, Event: audit.Event{EventType: "mystery"}})
			return nil
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b logb
			want := tt.build(&b)
			rep := Analyze(b.recs, tt.opts...)
			var got []exp
			for _, f := range rep.Findings {
				if len(f.Seqs) != len(f.EventIDs) || f.Summary == "" {
					t.Errorf("finding %+v: seqs and event ids differ or no summary", f)
				}
				got = append(got, exp{f.Rule, f.Agent, f.Seqs})
			}
			key := func(w exp) string { return fmt.Sprint(w) }
			sortW := func(ws []exp) {
				slices.SortFunc(ws, func(x, y exp) int {
					if key(x) < key(y) {
						return -1
					}
					return 1
				})
			}
			for i := range want {
				slices.Sort(want[i].seqs)
			}
			sortW(got)
			sortW(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("findings\n got %v\nwant %v", got, want)
			}
			if rep.Counts.Records != len(b.recs) {
				t.Errorf("counted %d records, want %d", rep.Counts.Records, len(b.recs))
			}
		})
	}
}

func TestGraph(t *testing.T) {
	var b logb
	b.add(dec{from: "a", to: "b", reason: "ok"})
	b.add(dec{from: "a", to: "b", reason: "invalid_signature"})
	b.add(dec{from: "b", to: "c", reason: "ok", extra: []string{audit.AIGeneratedPayload}})
	b.add(dec{from: "c", to: "a", reason: "ok", payload: map[string]any{"dry_run": true}})
	rep := Analyze(b.recs)
	got := fmt.Sprint(rep.Graph.Edges)
	want := "[{a b 1 1 0 mixed [1 2]} {b c 1 0 0 accepted [3]} {c a 0 0 1 dry_run [5]}]"
	if got != want {
		t.Errorf("edges\n got %s\nwant %s", got, want)
	}
	if len(rep.Graph.Nodes) != 3 || rep.Counts.Decisions != 4 || rep.Counts.Accepted != 2 || rep.Counts.Rejected != 1 || rep.Counts.DryRun != 1 {
		t.Errorf("nodes %v counts %+v", rep.Graph.Nodes, rep.Counts)
	}
	if len(rep.Timeline) != 5 {
		t.Errorf("timeline has %d entries, want 5", len(rep.Timeline))
	}
}
