// Package sentinel analyses the records of a verified audit log (package audit) and
// reports what a security reviewer should look at: replay attempts, stale capabilities,
// rotation-overlap key use, AI-generated payloads, bursts of signature failures per agent,
// escalation attempts, approval misuse, use of revoked authority, wrong-recipient
// deliveries, unusual delegation depth and time anomalies. Each finding cites the records
// (by seq) behind it.
//
// A report also holds the delegation graph (agents as nodes, handoffs as edges, counted
// by decision) and the timeline of records, and renders as text, JSON or a
// self-contained HTML page (WriteText, WriteJSON, WriteHTML).
//
// Analyze trusts nothing in the records: they are what the verifier saw of hostile
// envelopes (bounded by the log, but arbitrary JSON). A field of the wrong type is
// ignored, an unknown event type is counted and shown in the timeline, and nothing
// panics. Verify the log first (audit.ReadLog and its checkpoint): Analyze does not.
package sentinel

import (
	"cmp"
	"slices"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// Severity ranks findings.
type Severity string

// Severities, most severe first.
const (
	High   Severity = "high"
	Medium Severity = "medium"
	Low    Severity = "low"
	Info   Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case High:
		return 0
	case Medium:
		return 1
	case Low:
		return 2
	}
	return 3
}

// Rule names: stable API, as they appear in reports.
const (
	RuleReplay            = "replay_detected"
	RuleCapabilityStale   = "capability_stale"
	RuleOverlapUsed       = "token_overlap_used"
	RuleAIPayload         = "ai_generated_payload"
	RuleSignatureBurst    = "signature_failure_burst"
	RuleEscalation        = "escalation_attempt"
	RuleApprovalInvalid   = "approval_invalid"
	RuleApprovalDenied    = "approval_denied"
	RuleApprovalReused    = "approval_reused"
	RuleRevokedAuthority  = "revoked_authority"
	RuleWrongRecipient    = "wrong_recipient"
	RuleDelegationDepth   = "delegation_depth"
	RuleIssuedInFuture    = "issued_in_future"
	RuleNearExpiryBurst   = "near_expiry_burst"
	RuleAcceptedRevoked   = "accepted_after_revocation"
	maxSummaryListedItems = 5
)

// Rules returns every rule name in the order reports list them when severities tie (a
// new slice on each call).
func Rules() []string {
	return []string{RuleReplay, RuleCapabilityStale, RuleOverlapUsed, RuleAIPayload,
		RuleSignatureBurst, RuleEscalation, RuleApprovalInvalid, RuleApprovalDenied,
		RuleApprovalReused, RuleRevokedAuthority, RuleWrongRecipient, RuleDelegationDepth,
		RuleIssuedInFuture, RuleNearExpiryBurst, RuleAcceptedRevoked}
}

// Report is the result of Analyze. Its JSON field names are stable (spec/sentinel.md).
type Report struct {
	Log      LogInfo   `json:"log"`
	Settings Settings  `json:"settings"`
	Counts   Counts    `json:"counts"`
	Findings []Finding `json:"findings"`
	Graph    Graph     `json:"graph"`
	Timeline []Entry   `json:"timeline"`
}

// LogInfo describes the log the records came from, as its reader verified it (AnalyzeLog
// copies it into the report; Analyze leaves it zero).
type LogInfo struct {
	Path       string          `json:"path,omitempty"`
	Records    uint64          `json:"records"`
	LastHash   string          `json:"last_hash,omitempty"` // hex sha256 of the newest record line
	Root       string          `json:"root,omitempty"`      // RFC 6962 tree hash of every record (base64)
	Verified   bool            `json:"verified"`
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	Uncovered  uint64          `json:"uncovered"`
	Witnesses  []string        `json:"witnesses,omitempty"`
}

// CheckpointInfo is the signed checkpoint the log was verified against.
type CheckpointInfo struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
}

// Settings are the thresholds the rules used.
type Settings struct {
	BurstWindow     Duration `json:"burst_window"`
	BurstCount      int      `json:"burst_count"`
	DepthLimit      int64    `json:"depth_limit"`
	NearExpiry      Duration `json:"near_expiry"`
	Skew            Duration `json:"skew"`
	MaxHTMLTimeline int      `json:"max_html_timeline"`
}

// Duration is a time.Duration that encodes as its string ("1m0s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Counts sums up the records.
type Counts struct {
	Records    int              `json:"records"`
	Decisions  int              `json:"decisions"`
	Accepted   int              `json:"accepted"`
	Rejected   int              `json:"rejected"`
	DryRun     int              `json:"dry_run"`
	Findings   int              `json:"findings"`
	Nodes      int              `json:"nodes"`
	Edges      int              `json:"edges"`
	ByType     map[string]int   `json:"by_type"`
	ByReason   map[string]int   `json:"by_reason"`
	ByRule     map[string]int   `json:"by_rule"`
	BySeverity map[Severity]int `json:"by_severity"`
}

// Finding is one thing a reviewer should look at, with the records behind it.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Agent    string   `json:"agent"` // the from_agent the records claim ("" when none)
	Summary  string   `json:"summary"`
	Seqs     []uint64 `json:"seqs"`      // the records cited, ascending
	EventIDs []string `json:"event_ids"` // their event ids, in the order of Seqs
}

// Graph is the delegation graph: one node per agent named as from_agent or to_agent of
// a decision, one edge per (from, to) pair, counted by decision.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one agent.
type Node struct {
	ID       string `json:"id"`
	Sent     int    `json:"sent"`     // decisions on handoffs it sent
	Received int    `json:"received"` // decisions on handoffs addressed to it
	Findings int    `json:"findings"` // findings whose Agent it is
}

// Edge is every decision on handoffs from From to To. Dry runs count only in DryRun.
type Edge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	DryRun   int    `json:"dry_run"`
	// Decision colours the edge: "accepted" (every decision), "rejected" (every one),
	// "mixed", or "dry_run" (dry runs only).
	Decision string   `json:"decision"`
	Seqs     []uint64 `json:"seqs"` // the decision records, ascending
}

// Entry is one record in the timeline.
type Entry struct {
	Seq       uint64    `json:"seq"`
	EventID   string    `json:"event_id"`
	Type      string    `json:"event_type"`
	Timestamp time.Time `json:"timestamp"`
	Producer  string    `json:"producer_id,omitempty"`
	PacketID  string    `json:"packet_id,omitempty"` // correlation_id
	From      string    `json:"from_agent,omitempty"`
	To        string    `json:"to_agent,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	DryRun    bool      `json:"dry_run,omitempty"`
	Rules     []string  `json:"rules,omitempty"` // the rules whose findings cite this record
}

// Option sets an Analyze threshold.
type Option func(*Settings)

// Default thresholds.
const (
	DefaultBurstWindow     = time.Minute
	DefaultBurstCount      = 3
	DefaultDepthLimit      = 3
	DefaultNearExpiry      = 5 * time.Second
	DefaultSkew            = 30 * time.Second
	DefaultMaxHTMLTimeline = 2000
)

// WithBurst sets the burst rules' threshold: count or more records of one agent within
// window (defaults DefaultBurstCount, DefaultBurstWindow). Values below 1 are ignored.
func WithBurst(window time.Duration, count int) Option {
	return func(s *Settings) {
		if window > 0 {
			s.BurstWindow = Duration(window)
		}
		if count > 0 {
			s.BurstCount = count
		}
	}
}

// WithDepthLimit sets the deepest delegation chain_depth not reported (DefaultDepthLimit).
func WithDepthLimit(n int64) Option {
	return func(s *Settings) {
		if n >= 0 {
			s.DepthLimit = n
		}
	}
}

// WithNearExpiry sets how close to expires_at an accept counts as near expiry
// (DefaultNearExpiry).
func WithNearExpiry(d time.Duration) Option {
	return func(s *Settings) {
		if d > 0 {
			s.NearExpiry = Duration(d)
		}
	}
}

// WithSkew sets how far past a record's timestamp issued_at may lie before it is reported
// (DefaultSkew, the verifier's default).
func WithSkew(d time.Duration) Option {
	return func(s *Settings) {
		if d >= 0 {
			s.Skew = Duration(d)
		}
	}
}

// WithMaxHTMLTimeline sets how many timeline entries WriteHTML draws (the rest are
// counted in a note; JSON and text keep them all).
func WithMaxHTMLTimeline(n int) Option {
	return func(s *Settings) {
		if n > 0 {
			s.MaxHTMLTimeline = n
		}
	}
}

// Analyze runs every rule over records (in any order; they are taken in seq order) and
// returns the report. It never fails: records it cannot make sense of are counted and
// listed in the timeline.
func Analyze(records []audit.Record, opts ...Option) *Report {
	s := Settings{
		BurstWindow: Duration(DefaultBurstWindow), BurstCount: DefaultBurstCount,
		DepthLimit: DefaultDepthLimit, NearExpiry: Duration(DefaultNearExpiry),
		Skew: Duration(DefaultSkew), MaxHTMLTimeline: DefaultMaxHTMLTimeline,
	}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	a := newAnalysis(records, s)
	rep := &Report{Settings: s, Findings: []Finding{}, Timeline: []Entry{}}
	for _, rule := range rules {
		rep.Findings = append(rep.Findings, rule(a)...)
	}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		slices.Sort(f.Seqs)
		f.Seqs = slices.Compact(f.Seqs)
		f.EventIDs = make([]string, len(f.Seqs))
		for j, seq := range f.Seqs {
			f.EventIDs[j] = a.bySeq[seq].id
		}
	}
	ruleIndex := map[string]int{}
	for i, r := range Rules() {
		ruleIndex[r] = i
	}
	slices.SortStableFunc(rep.Findings, func(x, y Finding) int {
		return cmp.Or(
			cmp.Compare(x.Severity.rank(), y.Severity.rank()),
			cmp.Compare(x.Seqs[0], y.Seqs[0]),
			cmp.Compare(ruleIndex[x.Rule], ruleIndex[y.Rule]),
			cmp.Compare(x.Agent, y.Agent),
		)
	})
	rep.Graph = a.graph(rep.Findings)
	rep.Timeline = a.timeline(rep.Findings)
	rep.Counts = a.counts(rep)
	return rep
}

// AnalyzeLog is Analyze over every record of a verified log.
func AnalyzeLog(l *audit.Log, info LogInfo, opts ...Option) *Report {
	records := make([]audit.Record, 0, l.Size())
	for i := range l.Size() {
		records = append(records, l.Record(i))
	}
	rep := Analyze(records, opts...)
	rep.Log = info
	return rep
}
