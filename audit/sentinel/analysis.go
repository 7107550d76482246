package sentinel

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// obs is one record, with the payload fields the rules read. A field of the wrong type
// is left zero.
type obs struct {
	seq                         uint64
	id, typ, producer, corr     string
	ts                          time.Time
	from, to, decision, reason  string
	recipient, digest, packetID string
	issued, expires             time.Time
	depth                       int64 // -1: absent
	flags                       []string
	approvals                   []approvalRef
	dryRun                      bool
	capIDs                      []string // capability_ids: the verified chain
	// a revocation record (or a registry_change revoking an agent): what was revoked, when
	revKind, revID string
	revAt          time.Time
}

type approvalRef struct{ id, approver, decision string }

// group is one decision: its packet_accepted/packet_rejected record and the records of
// the same decision that follow it (replay_detected, capability_stale, …). A derived
// record with no decision before it (a foreign tool's log) is a group of its own.
type group struct {
	obs            // the primary record
	related []*obs // the other records of the decision
	types   map[string]bool
}

func (g *group) seqs() []uint64 {
	out := []uint64{g.seq}
	for _, r := range g.related {
		out = append(out, r.seq)
	}
	return out
}

// is reports whether the decision's records include type t, or its reason is one of codes.
func (g *group) is(t string, codes ...string) bool {
	return g.types[t] || slices.Contains(codes, g.reason)
}

func (g *group) hasFlag(f string) bool { return g.types[f] || slices.Contains(g.flags, f) }

func (g *group) isDecision() bool {
	return g.typ == audit.PacketAccepted || g.typ == audit.PacketRejected
}

func (g *group) accepted() bool {
	return g.typ == audit.PacketAccepted || (g.typ != audit.PacketRejected && g.decision == "ACCEPT")
}

type analysis struct {
	s      Settings
	obs    []*obs // seq order
	bySeq  map[uint64]*obs
	groups []*group // seq order of their primary record
}

// derived are the event types verify emits after a decision's first record.
var derived = map[string]bool{
	audit.ReplayDetected: true, audit.CapabilityStale: true, audit.WrongRecipient: true,
	audit.ApprovalDenied: true, audit.TokenOverlapUsed: true, audit.AIGeneratedPayload: true,
}

// groupLookback bounds how many decisions back a derived record looks for its own.
const groupLookback = 64

func newAnalysis(records []audit.Record, s Settings) *analysis {
	a := &analysis{s: s, bySeq: make(map[uint64]*obs, len(records))}
	for i := range records {
		o := observe(&records[i])
		if _, dup := a.bySeq[o.seq]; dup { // not in a verified log; keep the first
			continue
		}
		a.bySeq[o.seq] = o
		a.obs = append(a.obs, o)
	}
	slices.SortFunc(a.obs, func(x, y *obs) int { return cmp.Compare(x.seq, y.seq) })
	for _, o := range a.obs {
		if derived[o.typ] {
			if g := a.owner(o); g != nil {
				g.related = append(g.related, o)
				g.types[o.typ] = true
				continue
			}
		}
		a.groups = append(a.groups, &group{obs: *o, types: map[string]bool{o.typ: true}})
	}
	return a
}

// owner finds the decision a derived record belongs to: the latest decision before it
// with the same correlation id and the same decision and reason.
func (a *analysis) owner(o *obs) *group {
	for i, n := len(a.groups)-1, 0; i >= 0 && n < groupLookback; i, n = i-1, n+1 {
		g := a.groups[i]
		if g.isDecision() && g.corr == o.corr && g.decision == o.decision && g.reason == o.reason {
			return g
		}
	}
	return nil
}

func observe(r *audit.Record) *obs {
	p := r.Payload
	o := &obs{
		seq: r.Seq, id: r.EventID, typ: r.EventType, producer: r.ProducerID, corr: r.CorrelationID,
		ts:   r.Timestamp,
		from: str(p, "from_agent"), to: str(p, "to_agent"), decision: str(p, "decision"),
		reason: str(p, "reason"), recipient: str(p, "recipient"), digest: str(p, "packet_digest"),
		packetID: str(p, "packet_id"), issued: tm(p, "issued_at"), expires: tm(p, "expires_at"),
		depth: -1,
	}
	if o.packetID == "" {
		o.packetID = o.corr
	}
	if f, ok := p["chain_depth"].(float64); ok && f >= 0 && !math.IsNaN(f) {
		o.depth = int64(min(f, 1<<53))
	}
	if b, ok := p["dry_run"].(bool); ok {
		o.dryRun = b
	}
	if l, ok := p["flags"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				o.flags = append(o.flags, s)
			}
		}
	}
	if l, ok := p["capability_ids"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				o.capIDs = append(o.capIDs, s)
			}
		}
	}
	switch {
	case o.typ == audit.Revocation:
		o.revKind, o.revID, o.revAt = str(p, "kind"), str(p, "id"), tm(p, "revoked_at")
	case o.typ == audit.RegistryChange && str(p, "op") == audit.RegistryRevoke:
		o.revKind, o.revID, o.revAt = "agent", str(p, "agent_id"), tm(p, "at")
	}
	if o.revID != "" && o.revAt.IsZero() { // no (valid) time of its own: when it was recorded
		o.revAt = o.ts
	}
	if l, ok := p["approvals"].([]any); ok {
		for _, v := range l {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if id := str(m, "approval_id"); id != "" {
				o.approvals = append(o.approvals, approvalRef{id, str(m, "approver"), str(m, "decision")})
			}
		}
	}
	return o
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func tm(m map[string]any, k string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, str(m, k))
	if err != nil {
		return time.Time{}
	}
	return t
}

func (a *analysis) graph(findings []Finding) Graph {
	type key struct{ from, to string }
	edges := map[key]*Edge{}
	nodes := map[string]*Node{}
	node := func(id string) *Node {
		n, ok := nodes[id]
		if !ok {
			n = &Node{ID: id}
			nodes[id] = n
		}
		return n
	}
	for _, g := range a.groups {
		if !g.isDecision() || g.from == "" || g.to == "" {
			continue
		}
		e, ok := edges[key{g.from, g.to}]
		if !ok {
			e = &Edge{From: g.from, To: g.to}
			edges[key{g.from, g.to}] = e
		}
		switch {
		case g.dryRun:
			e.DryRun++
		case g.accepted():
			e.Accepted++
		default:
			e.Rejected++
		}
		e.Seqs = append(e.Seqs, g.seq)
		node(g.from).Sent++
		node(g.to).Received++
	}
	for _, f := range findings {
		if n, ok := nodes[f.Agent]; ok {
			n.Findings++
		}
	}
	out := Graph{Nodes: []Node{}, Edges: []Edge{}}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, *n)
	}
	slices.SortFunc(out.Nodes, func(x, y Node) int { return cmp.Compare(x.ID, y.ID) })
	for _, e := range edges {
		switch {
		case e.Accepted == 0 && e.Rejected == 0:
			e.Decision = "dry_run"
		case e.Rejected == 0:
			e.Decision = "accepted"
		case e.Accepted == 0:
			e.Decision = "rejected"
		default:
			e.Decision = "mixed"
		}
		out.Edges = append(out.Edges, *e)
	}
	slices.SortFunc(out.Edges, func(x, y Edge) int { return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To)) })
	return out
}

func (a *analysis) timeline(findings []Finding) []Entry {
	cited := map[uint64][]string{}
	for _, f := range findings {
		for _, s := range f.Seqs {
			if !slices.Contains(cited[s], f.Rule) {
				cited[s] = append(cited[s], f.Rule)
			}
		}
	}
	out := make([]Entry, 0, len(a.obs))
	for _, o := range a.obs {
		rules := cited[o.seq]
		slices.Sort(rules)
		out = append(out, Entry{
			Seq: o.seq, EventID: o.id, Type: o.typ, Timestamp: o.ts, Producer: o.producer,
			PacketID: o.corr, From: o.from, To: o.to, Decision: o.decision, Reason: o.reason,
			DryRun: o.dryRun, Rules: rules,
		})
	}
	return out
}

func (a *analysis) counts(rep *Report) Counts {
	c := Counts{
		Records: len(a.obs), Findings: len(rep.Findings),
		Nodes: len(rep.Graph.Nodes), Edges: len(rep.Graph.Edges),
		ByType: map[string]int{}, ByReason: map[string]int{}, ByRule: map[string]int{},
		BySeverity: map[Severity]int{},
	}
	for _, o := range a.obs {
		c.ByType[o.typ]++
	}
	for _, g := range a.groups {
		if !g.isDecision() {
			continue
		}
		c.Decisions++
		if g.reason != "" {
			c.ByReason[g.reason]++
		}
		switch {
		case g.dryRun:
			c.DryRun++
		case g.accepted():
			c.Accepted++
		default:
			c.Rejected++
		}
	}
	for _, f := range rep.Findings {
		c.ByRule[f.Rule]++
		c.BySeverity[f.Severity]++
	}
	return c
}
