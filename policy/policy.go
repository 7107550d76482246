// Package policy reads the receiver's policy file: one YAML or JSON document that says
// what a verifier accepts, whatever the sender asks for. It names the agent the verifier
// serves, the time policy (strict mode, skew, grace, TTL per risk level), the delegation
// depth, whether a capability is required, an ordered action catalogue (risk, review and
// deny per action, exact names or prefixes ending in "*", first match wins), what to do
// with actions the catalogue does not know, and the approval rules.
//
// Every field is optional except version; an absent field takes the verifier's default
// (the reference-compatible defaults: skew 30s, grace 0s, depth 5, read TTL 900s, write
// TTL 120s, one approval), and a present one means exactly what it says ("0s" is zero).
// Unknown keys, duplicate keys, wrong types, out-of-range values, action rules that can
// never match and trailing documents are errors that name the field and its line.
//
// A *Policy plugs into package verify: it is a verify.ActionPolicy, and Options returns
// every verify option the file implies. spec/protocol.md ("The receiver's policy file")
// describes the format; policy.schema.json (also returned by Schema) is its JSON Schema.
package policy

import (
	_ "embed"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Version is the policy file format version this package reads.
const Version = 1

// Defaults of the knobs a policy file may leave out: the verifier's own defaults.
const (
	DefaultSkew      = packet.DefaultSkew
	DefaultGrace     = 0 * time.Second
	DefaultMaxDepth  = 5
	DefaultTTLRead   = 900 * time.Second
	DefaultTTLWrite  = 120 * time.Second
	DefaultThreshold = 1
)

// Limits of the knobs. Skew and grace are the verifier's own limits; the others keep a
// policy file from saying something no deployment means.
const (
	MaxSkew            = packet.MaxSkew
	MaxGrace           = packet.MaxGrace
	MaxTTL             = 24 * time.Hour
	MaxDelegationDepth = 100
	MaxThreshold       = 100
	MaxRules           = 1000 // action rules in one catalogue
)

// What a policy does with an action its catalogue does not list (unknown_actions).
const (
	// UnknownClassify (the field left out): the verifier's built-in classifier decides
	// the risk, the reference-compatible verb map or, in strict mode, the allow-list of
	// read verbs (packet.DefaultActionRisk, packet.StrictActionRisk).
	UnknownClassify = ""
	UnknownWrite    = "write"  // every unlisted action is a write
	UnknownRead     = "read"   // every unlisted action is a read (weaker than both classifiers)
	UnknownReject   = "reject" // a packet asking for an unlisted action is rejected
)

// Policy is a parsed, validated receiver policy. Make one with Parse or Load. A nil
// *Policy, like the zero Policy, is the default policy: every knob at its default and an
// empty action catalogue.
type Policy struct {
	as         string
	strict     bool
	skew       *time.Duration
	grace      *time.Duration
	maxDepth   *int
	requireCap bool
	ttlRead    *time.Duration
	ttlWrite   *time.Duration
	rules      []rule
	unknown    string
	threshold  *int
	aiWrite    bool
}

// rule is one entry of the action catalogue.
type rule struct {
	match  string // an exact name, or a prefix followed by "*"
	risk   string // "", read or write
	review bool
	deny   bool
	line   int // where the rule starts in the file, for messages
}

func (r *rule) prefix() (string, bool) {
	if p, ok := strings.CutSuffix(r.match, "*"); ok {
		return p, true
	}
	return r.match, false
}

func (r *rule) matches(action string) bool {
	if p, ok := r.prefix(); ok {
		return strings.HasPrefix(action, p)
	}
	return action == r.match
}

// covers reports whether r matches every action that o matches (o comes later and is
// then unreachable).
func (r *rule) covers(o *rule) bool {
	p, pre := r.prefix()
	if !pre {
		return o.match == r.match
	}
	q, _ := o.prefix()
	return strings.HasPrefix(q, p)
}

var _ verify.ActionPolicy = (*Policy)(nil)

// ActionRule returns the receiver's rule for an action: that of the first catalogue
// entry matching it, else what unknown_actions says (a write or read risk, a rejection,
// or nothing, which leaves the risk to the verifier's classifier).
func (p *Policy) ActionRule(action string) verify.ActionRule {
	if p == nil {
		return verify.ActionRule{}
	}
	for i := range p.rules {
		if r := &p.rules[i]; r.matches(action) {
			return verify.ActionRule{Risk: r.risk, Review: r.review, Deny: r.deny}
		}
	}
	switch p.unknown {
	case UnknownWrite:
		return verify.ActionRule{Risk: packet.RiskWrite}
	case UnknownRead:
		return verify.ActionRule{Risk: packet.RiskRead}
	case UnknownReject:
		return verify.ActionRule{Reject: true}
	}
	return verify.ActionRule{}
}

// Settings are the verifier knobs of a policy with every default filled in. The CLI
// overrides them with the flags given on its command line before making the verifier.
type Settings struct {
	As                string        // the agent the verifier serves; "" binds no recipient
	Strict            bool          // strict TTL mode and the strict action classifier
	Skew              time.Duration // allowed clock skew for issued_at
	Grace             time.Duration // allowed lateness after expires_at
	MaxDepth          int           // maximum delegation depth
	RequireCapability bool          // every handoff must carry a capability
	TTLRead           time.Duration // TTL of a read handoff
	TTLWrite          time.Duration // TTL of a write handoff
	ApprovalThreshold int           // distinct approvers needed when review is required
	AIWriteApproval   bool          // AI-generated write handoffs need a human approval
}

// Settings returns the policy's knobs, defaults filled in.
func (p *Policy) Settings() Settings {
	if p == nil {
		p = &Policy{}
	}
	return Settings{
		As:                p.as,
		Strict:            p.strict,
		Skew:              or(p.skew, DefaultSkew),
		Grace:             or(p.grace, DefaultGrace),
		MaxDepth:          or(p.maxDepth, DefaultMaxDepth),
		RequireCapability: p.requireCap,
		TTLRead:           or(p.ttlRead, DefaultTTLRead),
		TTLWrite:          or(p.ttlWrite, DefaultTTLWrite),
		ApprovalThreshold: or(p.threshold, DefaultThreshold),
		AIWriteApproval:   p.aiWrite,
	}
}

func or[T any](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}

// Options returns the verify options that set these knobs. Values out of the verifier's
// ranges (a zero threshold, a skew over 300s) make verify.New fail.
func (s Settings) Options() []verify.Option {
	opts := []verify.Option{
		verify.WithSkew(s.Skew),
		verify.WithGrace(s.Grace),
		verify.WithMaxDepth(s.MaxDepth),
		verify.WithApprovalThreshold(s.ApprovalThreshold),
		verify.WithTTL(packet.RiskLevel{Name: packet.RiskRead, TTL: s.TTLRead}, packet.RiskLevel{Name: packet.RiskWrite, TTL: s.TTLWrite}),
	}
	if s.As != "" {
		opts = append(opts, verify.WithRecipient(s.As))
	}
	if s.Strict {
		opts = append(opts, verify.WithStrict())
	}
	if s.RequireCapability {
		opts = append(opts, verify.WithRequireCapability())
	}
	if s.AIWriteApproval {
		opts = append(opts, verify.WithAIWriteApproval())
	}
	return opts
}

// Options returns every verify option the policy implies: its settings and its action
// catalogue (verify.WithActionPolicy).
func (p *Policy) Options() []verify.Option {
	if p == nil {
		return p.Settings().Options()
	}
	return append(p.Settings().Options(), verify.WithActionPolicy(p))
}

// document is the effective policy as a policy file: every knob explicit, in the order
// the format lists them.
type document struct {
	Version           int          `json:"version"`
	As                string       `json:"as,omitempty"`
	Strict            bool         `json:"strict"`
	Skew              string       `json:"skew"`
	Grace             string       `json:"grace"`
	MaxDepth          int          `json:"max_depth"`
	RequireCapability bool         `json:"require_capability"`
	TTL               ttlDoc       `json:"ttl"`
	Actions           []ruleDoc    `json:"actions"`
	UnknownActions    string       `json:"unknown_actions,omitempty"`
	Approvals         approvalsDoc `json:"approvals"`
}

type ttlDoc struct {
	Read  string `json:"read"`
	Write string `json:"write"`
}

type ruleDoc struct {
	Match  string `json:"match"`
	Risk   string `json:"risk,omitempty"`
	Review bool   `json:"review,omitempty"`
	Deny   bool   `json:"deny,omitempty"`
}

type approvalsDoc struct {
	Threshold        int  `json:"threshold"`
	AIGeneratedWrite bool `json:"ai_generated_write"`
}

// MarshalJSON writes the effective policy as a policy file in JSON: every knob explicit
// (defaults filled in), durations in seconds ("900s", or milliseconds when not whole),
// unknown_actions and as left out when unset. Parse reads it back to the same policy.
func (p *Policy) MarshalJSON() ([]byte, error) {
	if p == nil {
		p = &Policy{}
	}
	s := p.Settings()
	d := document{
		Version: Version, As: s.As, Strict: s.Strict,
		Skew: formatDuration(s.Skew), Grace: formatDuration(s.Grace),
		MaxDepth: s.MaxDepth, RequireCapability: s.RequireCapability,
		TTL:            ttlDoc{Read: formatDuration(s.TTLRead), Write: formatDuration(s.TTLWrite)},
		Actions:        make([]ruleDoc, len(p.rules)),
		UnknownActions: p.unknown,
		Approvals:      approvalsDoc{Threshold: s.ApprovalThreshold, AIGeneratedWrite: s.AIWriteApproval},
	}
	for i, r := range p.rules {
		d.Actions[i] = ruleDoc{Match: r.match, Risk: r.risk, Review: r.review, Deny: r.deny}
	}
	return json.Marshal(d)
}

// formatDuration spells d in the policy file's duration syntax (a whole number of one
// unit); Parse only produces whole milliseconds.
func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

//go:embed policy.schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of the policy file. It accepts every
// document Parse accepts; a few rules only Parse checks (duplicate keys, the ranges of
// durations, the order of TTLs, unreachable action rules, YAML anchors and tags).
func Schema() []byte { return append([]byte(nil), schema...) }
