package sentinel

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/reason"
)

// rules run in this order; Analyze sorts their findings afterwards.
var rules = []func(*analysis) []Finding{
	replayRule, staleRule, overlapRule, aiRule, signatureBurstRule, escalationRule,
	approvalInvalidRule, approvalDeniedRule, approvalReusedRule, revokedRule,
	wrongRecipientRule, depthRule, futureRule, nearExpiryRule, acceptedRevokedRule,
}

// perAgent makes one finding per from_agent of the groups that match, citing all their
// records, in order of each agent's first match.
func (a *analysis) perAgent(rule string, sev Severity, match func(*group) bool, summary func(agent string, gs []*group) string) []Finding {
	byAgent := map[string][]*group{}
	var agents []string
	for _, g := range a.groups {
		if !match(g) {
			continue
		}
		if _, ok := byAgent[g.from]; !ok {
			agents = append(agents, g.from)
		}
		byAgent[g.from] = append(byAgent[g.from], g)
	}
	var out []Finding
	for _, agent := range agents {
		gs := byAgent[agent]
		out = append(out, finding(rule, sev, agent, summary(agent, gs), gs))
	}
	return out
}

func finding(rule string, sev Severity, agent, summary string, gs []*group) Finding {
	var seqs []uint64
	for _, g := range gs {
		seqs = append(seqs, g.seqs()...)
	}
	return Finding{Rule: rule, Severity: sev, Agent: agent, Summary: summary, Seqs: seqs}
}

// who names an agent in a summary (quoted: it is attacker-chosen).
func who(agent string) string {
	if agent == "" {
		return "an unnamed sender"
	}
	return fmt.Sprintf("agent %q", agent)
}

// list quotes up to maxSummaryListedItems distinct values.
func list(vals []string) string {
	set := map[string]bool{}
	var seen []string
	for _, v := range vals {
		if v != "" && !set[v] {
			set[v] = true
			seen = append(seen, v)
		}
	}
	slices.Sort(seen)
	more := ""
	if len(seen) > maxSummaryListedItems {
		more = fmt.Sprintf(" and %d more", len(seen)-maxSummaryListedItems)
		seen = seen[:maxSummaryListedItems]
	}
	q := make([]string, len(seen))
	for i, v := range seen {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ") + more
}

func field(gs []*group, f func(*group) string) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = f(g)
	}
	return out
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// replayRule: a packet presented again after its nonce was spent (reason replay_detected,
// or a replay_detected record). Dry runs are forensic re-verifications and always see
// spent nonces, so they are left out.
func replayRule(a *analysis) []Finding {
	return a.perAgent(RuleReplay, High, func(g *group) bool {
		return !g.dryRun && g.is(RuleReplay, string(reason.ReplayDetected))
	}, func(agent string, gs []*group) string {
		return fmt.Sprintf("%s: %s replayed (packets %s)", who(agent), plural(len(gs), "handoff"), list(field(gs, func(g *group) string { return g.packetID })))
	})
}

// staleRule: a handoff under an expired capability (reason capability_expired, or a
// capability_stale record of a decision not rejected as revoked: revoked links are
// revokedRule's).
func staleRule(a *analysis) []Finding {
	return a.perAgent(RuleCapabilityStale, Medium, func(g *group) bool {
		return g.reason == string(reason.CapabilityExpired) || (g.types[RuleCapabilityStale] && g.reason != string(reason.CapabilityRevoked))
	}, func(agent string, gs []*group) string {
		return fmt.Sprintf("%s: %s under an expired capability", who(agent), plural(len(gs), "handoff"))
	})
}

// overlapRule: accepted handoffs that used a key inside its rotation overlap window.
func overlapRule(a *analysis) []Finding {
	return a.perAgent(RuleOverlapUsed, Low, func(g *group) bool { return g.hasFlag(RuleOverlapUsed) },
		func(agent string, gs []*group) string {
			return fmt.Sprintf("%s: %s signed with a key in its rotation overlap window (retire the old key)", who(agent), plural(len(gs), "handoff"))
		})
}

// aiRule: handoffs whose payload the sender declared AI-generated.
func aiRule(a *analysis) []Finding {
	return a.perAgent(RuleAIPayload, Info, func(g *group) bool { return g.hasFlag(RuleAIPayload) },
		func(agent string, gs []*group) string {
			return fmt.Sprintf("%s: %s with an AI-generated payload", who(agent), plural(len(gs), "handoff"))
		})
}

// bursts returns, per from_agent, the maximal runs of matching groups in which every
// group lies in a window of BurstWindow holding at least BurstCount matches (by record
// timestamp). Each run is one finding.
func (a *analysis) bursts(rule string, sev Severity, match func(*group) bool, summary func(agent string, gs []*group, span time.Duration) string) []Finding {
	byAgent := map[string][]*group{}
	var agents []string
	for _, g := range a.groups {
		if !match(g) {
			continue
		}
		if _, ok := byAgent[g.from]; !ok {
			agents = append(agents, g.from)
		}
		byAgent[g.from] = append(byAgent[g.from], g)
	}
	w, k := time.Duration(a.s.BurstWindow), max(a.s.BurstCount, 1)
	var out []Finding
	for _, agent := range agents {
		gs := byAgent[agent]
		slices.SortStableFunc(gs, func(x, y *group) int { return cmp.Or(x.ts.Compare(y.ts), cmp.Compare(x.seq, y.seq)) })
		in := make([]bool, len(gs))
		end, marked := 0, 0 // in[:marked] is decided; both only grow, so this is linear
		for j := range gs {
			end = max(end, j)
			for end < len(gs) && gs[end].ts.Sub(gs[j].ts) <= w {
				end++
			}
			if end-j >= k {
				for i := max(j, marked); i < end; i++ {
					in[i] = true
				}
				marked = max(marked, end)
			}
		}
		for i := 0; i < len(gs); {
			if !in[i] {
				i++
				continue
			}
			j := i
			for j+1 < len(gs) && in[j+1] && gs[j+1].ts.Sub(gs[j].ts) <= w {
				j++
			}
			run := gs[i : j+1]
			out = append(out, finding(rule, sev, agent, summary(agent, run, run[len(run)-1].ts.Sub(run[0].ts)), run))
			i = j + 1
		}
	}
	return out
}

// signatureBurstRule: BurstCount or more rejections for a bad signature or a key that is
// not the sender's (invalid_signature, public_key_mismatch) claiming one from_agent within
// BurstWindow: someone probing or forging in its name.
func signatureBurstRule(a *analysis) []Finding {
	return a.bursts(RuleSignatureBurst, High, func(g *group) bool {
		return g.isDecision() && !g.accepted() && (g.reason == string(reason.InvalidSignature) || g.reason == string(reason.PublicKeyMismatch))
	}, func(agent string, gs []*group, span time.Duration) string {
		return fmt.Sprintf("%s: %s (invalid signature or foreign key) within %s", who(agent), plural(len(gs), "signature failure"), span)
	})
}

// escalationRule: handoffs asking for more than their authority: a capability link wider
// than its parent (capability_escalation) or a packet outside its leaf capability
// (action_not_authorized).
func escalationRule(a *analysis) []Finding {
	return a.perAgent(RuleEscalation, High, func(g *group) bool {
		return g.reason == string(reason.CapabilityEscalation) || g.reason == string(reason.ActionNotAuthorized)
	}, func(agent string, gs []*group) string {
		return fmt.Sprintf("%s: %s beyond its authority (%s)", who(agent), plural(len(gs), "handoff"), list(field(gs, func(g *group) string { return g.reason })))
	})
}

// approvalInvalidRule: handoffs rejected for an approval that does not verify.
func approvalInvalidRule(a *analysis) []Finding {
	return a.perAgent(RuleApprovalInvalid, High, func(g *group) bool { return g.reason == string(reason.ApprovalInvalid) },
		func(agent string, gs []*group) string {
			return fmt.Sprintf("%s: %s with an invalid approval", who(agent), plural(len(gs), "handoff"))
		})
}

// approvalDeniedRule: handoffs a human denied (an approval_denied record), in particular
// ones resent after the deny was recorded.
func approvalDeniedRule(a *analysis) []Finding {
	return a.perAgent(RuleApprovalDenied, Medium, func(g *group) bool { return g.types[RuleApprovalDenied] },
		func(agent string, gs []*group) string {
			return fmt.Sprintf("%s: %s denied by an approver (packets %s)", who(agent), plural(len(gs), "handoff"), list(field(gs, func(g *group) string { return g.packetID })))
		})
}

// approvalReusedRule: one approval_id attached to different packets (by packet_digest,
// else packet id): an approval is bound to one packet, so reuse is an attempt to carry a
// human's consent over to something else.
func approvalReusedRule(a *analysis) []Finding {
	type use struct {
		packets map[string]bool
		gs      []*group
	}
	uses := map[string]*use{}
	var ids []string
	for _, g := range a.groups {
		if !g.isDecision() {
			continue
		}
		pkt := g.digest
		if pkt == "" {
			pkt = g.packetID
		}
		for _, ap := range g.approvals {
			u, ok := uses[ap.id]
			if !ok {
				u = &use{packets: map[string]bool{}}
				uses[ap.id] = u
				ids = append(ids, ap.id)
			}
			u.packets[pkt] = true
			if len(u.gs) == 0 || u.gs[len(u.gs)-1] != g { // groups come in order
				u.gs = append(u.gs, g)
			}
		}
	}
	var out []Finding
	for _, id := range ids {
		u := uses[id]
		if len(u.packets) < 2 {
			continue
		}
		out = append(out, finding(RuleApprovalReused, High, u.gs[0].from,
			fmt.Sprintf("approval %q attached to %d different packets (%s)", id, len(u.packets), list(field(u.gs, func(g *group) string { return g.packetID }))), u.gs))
	}
	return out
}

// revokedRule: handoffs by a revoked agent or under a revoked capability.
func revokedRule(a *analysis) []Finding {
	return a.perAgent(RuleRevokedAuthority, High, func(g *group) bool {
		return g.reason == string(reason.AgentRevoked) || g.reason == string(reason.CapabilityRevoked)
	}, func(agent string, gs []*group) string {
		return fmt.Sprintf("%s: %s using revoked authority (%s)", who(agent), plural(len(gs), "handoff"), list(field(gs, func(g *group) string { return g.reason })))
	})
}

// acceptedRevokedRule: handoffs accepted after the log recorded the revocation of their
// sender (an agent revocation) or of a capability of their chain: a verifier that had not
// yet learnt of the revocation (propagation between nodes) or did not consult it. A
// decision counts when it comes after the revocation's record in the log and its
// timestamp is not before the revocation's time, so a decision made earlier but recorded
// later is not one. One finding per revocation, citing it and the decisions.
func acceptedRevokedRule(a *analysis) []Finding {
	type rev struct {
		o  *obs
		gs []*group
	}
	revs := map[string]*rev{} // kind + " " + id -> the first revocation recorded
	var order []*rev
	for _, g := range a.groups {
		if g.revID != "" && (g.revKind == "agent" || g.revKind == "capability") {
			k := g.revKind + " " + g.revID
			if _, ok := revs[k]; !ok {
				r := &rev{o: &g.obs}
				revs[k] = r
				order = append(order, r)
			}
			continue
		}
		if len(revs) == 0 || !g.accepted() || g.dryRun {
			continue
		}
		hit := func(kind, id string) {
			if r, ok := revs[kind+" "+id]; ok && !g.ts.Before(r.o.revAt) {
				if n := len(r.gs); n == 0 || r.gs[n-1] != g {
					r.gs = append(r.gs, g)
				}
			}
		}
		hit("agent", g.from)
		for _, id := range g.capIDs {
			hit("capability", id)
		}
	}
	var out []Finding
	for _, r := range order {
		if len(r.gs) == 0 {
			continue
		}
		late := r.gs[len(r.gs)-1].ts.Sub(r.o.revAt)
		f := finding(RuleAcceptedRevoked, High, r.gs[0].from,
			fmt.Sprintf("%s %q revoked at seq %d, then %s accepted under it (the last %s after the revocation)",
				r.o.revKind, r.o.revID, r.o.seq, plural(len(r.gs), "handoff"), late.Round(time.Millisecond)), r.gs)
		f.Seqs = append([]uint64{r.o.seq}, f.Seqs...)
		out = append(out, f)
	}
	return out
}

// wrongRecipientRule: handoffs delivered to a verifier they are not addressed to.
func wrongRecipientRule(a *analysis) []Finding {
	return a.perAgent(RuleWrongRecipient, Medium, func(g *group) bool { return g.is(RuleWrongRecipient, string(reason.WrongRecipient)) },
		func(agent string, gs []*group) string {
			return fmt.Sprintf("%s: %s addressed to %s delivered to %s", who(agent), plural(len(gs), "handoff"),
				list(field(gs, func(g *group) string { return g.to })), list(field(gs, func(g *group) string { return g.recipient })))
		})
}

// depthRule: handoffs claiming a delegation chain deeper than DepthLimit, or rejected as
// too deep or looping.
func depthRule(a *analysis) []Finding {
	return a.perAgent(RuleDelegationDepth, Medium, func(g *group) bool {
		return g.isDecision() && (g.depth > a.s.DepthLimit || g.reason == string(reason.DepthExceeded) || g.reason == string(reason.DelegationLoop))
	}, func(agent string, gs []*group) string {
		deepest := int64(0)
		for _, g := range gs {
			deepest = max(deepest, g.depth)
		}
		return fmt.Sprintf("%s: %s with a delegation chain deeper than %d or looping (deepest %d)", who(agent), plural(len(gs), "handoff"), a.s.DepthLimit, deepest)
	})
}

// futureRule: packets issued later than the record's timestamp plus Skew (the sender's
// clock runs ahead, or it pre-dates packets to stretch their life), or rejected as
// issued_in_future.
func futureRule(a *analysis) []Finding {
	skew := time.Duration(a.s.Skew)
	return a.perAgent(RuleIssuedInFuture, Medium, func(g *group) bool {
		if !g.isDecision() {
			return false
		}
		return g.reason == string(reason.IssuedInFuture) || (!g.issued.IsZero() && !g.ts.IsZero() && g.issued.Sub(g.ts) > skew)
	}, func(agent string, gs []*group) string {
		ahead := time.Duration(0)
		for _, g := range gs {
			if !g.issued.IsZero() && !g.ts.IsZero() {
				ahead = max(ahead, g.issued.Sub(g.ts))
			}
		}
		return fmt.Sprintf("%s: %s issued in the future (up to %s ahead of the verifier)", who(agent), plural(len(gs), "handoff"), ahead)
	})
}

// nearExpiryRule: BurstCount or more accepted handoffs of one sender within BurstWindow,
// each accepted at most NearExpiry before its expires_at: packets held back and spent at
// the last moment.
func nearExpiryRule(a *analysis) []Finding {
	near := time.Duration(a.s.NearExpiry)
	return a.bursts(RuleNearExpiryBurst, Low, func(g *group) bool {
		if !g.isDecision() || !g.accepted() || g.dryRun || g.expires.IsZero() || g.ts.IsZero() {
			return false
		}
		left := g.expires.Sub(g.ts)
		return left >= 0 && left <= near
	}, func(agent string, gs []*group, span time.Duration) string {
		return fmt.Sprintf("%s: %s accepted within %s of expiry, within %s", who(agent), plural(len(gs), "handoff"), near, span)
	})
}
