package packet

import (
	"fmt"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Limits on the time policy knobs.
const (
	DefaultSkew = 30 * time.Second
	MaxSkew     = 300 * time.Second
	MaxGrace    = 60 * time.Second
)

// RiskLevel is one level of the TTL policy.
type RiskLevel struct {
	Name string
	TTL  time.Duration
}

// TimePolicy configures the time checks. Every field means what it says: a zero Skew
// allows no clock skew and a zero Grace no lateness. DefaultTimePolicy returns the
// defaults (skew 30 s, grace 0, read = 900 s, write = 120 s, reference-compatible mode).
type TimePolicy struct {
	Skew   time.Duration // allowed clock skew for issued_at (at most 300 s)
	Grace  time.Duration // allowed lateness after expires_at (at most 60 s)
	Levels []RiskLevel   // least risky first; nil: DefaultLevels()
	// ActionRisk maps an action to a risk level name; nil: DefaultActionRisk, or
	// StrictActionRisk in strict mode.
	ActionRisk func(action string) string
	// Strict requires risk_level, caps the window at the policy TTL, and classifies
	// actions by allow-list (StrictActionRisk).
	Strict bool
}

// DefaultTimePolicy returns the default policy: skew 30 s, grace 0, the default levels,
// reference-compatible (not strict) mode.
func DefaultTimePolicy() TimePolicy { return TimePolicy{Skew: DefaultSkew} }

// DefaultLevels returns the default TTL policy: read = 900 s, write = 120 s.
func DefaultLevels() []RiskLevel {
	return []RiskLevel{{RiskRead, 900 * time.Second}, {RiskWrite, 120 * time.Second}}
}

var defaultLevels = DefaultLevels()

var writeVerbs = [...]string{"write", "delete", "update", "create", "insert", "remove", "send",
	"pay", "transfer", "execute", "deploy", "modify", "put", "post", "patch"}

// DefaultActionRisk is the reference-compatible action map: "write" for an action whose
// lower-cased name equals or starts with a write verb (send_email, delete_user), and
// "read" for everything else.
func DefaultActionRisk(action string) string {
	a := strings.ToLower(action)
	for _, v := range writeVerbs {
		if strings.HasPrefix(a, v) {
			return RiskWrite
		}
	}
	return RiskRead
}

var readVerbs = [...]string{"read", "get", "list", "search", "fetch", "query", "view", "describe",
	"summarize", "draft", "lookup", "find", "analyze", "count", "check", "inspect", "browse",
	"retrieve", "preview"}

// StrictActionRisk classifies by allow-list and fails safe: an action is "read" only when
// its name is plain lower-case ASCII ([a-z0-9_.:/-]) and its first word (up to the first
// '_', '.', ':', '/' or '-') is a known read verb (read, get, list, search, fetch, query,
// view, describe, summarize, draft, lookup, find, analyze, count, check, inspect, browse,
// retrieve, preview). Every other action is "write": unknown verbs (issue_refund),
// look-alike letters (a dotless ı), full-width or zero-width characters, upper case,
// spaces.
func StrictActionRisk(action string) string {
	word := len(action)
	for i := 0; i < len(action); i++ {
		c := action[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == ':' || c == '/' || c == '-':
			word = min(word, i)
		default:
			return RiskWrite
		}
	}
	verb := action[:word]
	for _, v := range readVerbs {
		if verb == v {
			return RiskRead
		}
	}
	return RiskWrite
}

// Check validates the policy's own knobs.
func (pol *TimePolicy) Check() error {
	if pol.Skew < 0 || pol.Skew > MaxSkew {
		return fmt.Errorf("clock skew %v is outside 0..%v", pol.Skew, MaxSkew)
	}
	if pol.Grace < 0 || pol.Grace > MaxGrace {
		return fmt.Errorf("expiry grace %v is outside 0..%v", pol.Grace, MaxGrace)
	}
	for _, l := range pol.Levels {
		if l.Name == "" || l.TTL <= 0 {
			return fmt.Errorf("risk level %q needs a name and a positive TTL", l.Name)
		}
	}
	return nil
}

func (pol *TimePolicy) skew() time.Duration { return pol.Skew }

func (pol *TimePolicy) levels() []RiskLevel {
	if pol.Levels == nil {
		return defaultLevels
	}
	return pol.Levels
}

// rank returns the index of a level name, or -1.
func (pol *TimePolicy) rank(name string) int {
	for i, l := range pol.levels() {
		if l.Name == name {
			return i
		}
	}
	return -1
}

// EffectiveRisk returns the worst of the declared risk level and the risks the packet's
// actions imply, and whether there is any (a packet with neither a risk level nor a
// non-lowest-risk action has none). An unknown declared level is unsupported_risk_level.
func (pol *TimePolicy) EffectiveRisk(p *Packet) (RiskLevel, bool, error) {
	best := -1
	if p.RiskLevel != nil {
		best = pol.rank(*p.RiskLevel)
		if best < 0 {
			return RiskLevel{}, false, reason.New(reason.UnsupportedRisk, fmt.Sprintf("risk_level %q is not in the policy", *p.RiskLevel))
		}
	}
	actionRisk := pol.ActionRisk
	switch {
	case actionRisk != nil:
	case pol.Strict:
		actionRisk = StrictActionRisk
	default:
		actionRisk = DefaultActionRisk
	}
	for _, a := range p.Permissions.AllowedActions {
		// Actions only raise the risk: a read action does not give a riskless packet a level.
		if r := pol.rank(actionRisk(a)); r > 0 && r > best {
			best = r
		}
	}
	if best < 0 {
		return RiskLevel{}, false, nil
	}
	return pol.levels()[best], true, nil
}

// TTLFor returns the policy TTL for a packet with these actions and declared risk.
func (pol *TimePolicy) TTLFor(risk string, actions []string) (time.Duration, error) {
	p := &Packet{Permissions: Permissions{AllowedActions: actions}}
	if risk != "" {
		p.RiskLevel = &risk
	}
	lvl, ok, err := pol.EffectiveRisk(p)
	if err != nil {
		return 0, err
	}
	if !ok {
		return pol.levels()[0].TTL, nil
	}
	return lvl.TTL, nil
}

// ValidateTime checks p's time window at instant now: well-formed window, not issued in the
// future beyond the skew, not expired beyond the grace, and the TTL policy. It is a pure
// function of its arguments; the error is a *reason.Error.
func ValidateTime(p *Packet, now time.Time, pol *TimePolicy) error {
	issued, expires := p.IssuedAt.Micros, p.ExpiresAt.Micros
	window := expires - issued // microseconds
	if window <= 0 {
		return reason.New(reason.MalformedTimeWindow, "expires_at is not after issued_at")
	}
	nowUs := now.UnixMicro()
	if issued > nowUs+pol.skew().Microseconds() {
		return reason.New(reason.IssuedInFuture, fmt.Sprintf("issued_at is %v in the future (skew allowed: %v)", time.Duration(issued-nowUs)*time.Microsecond, pol.skew()))
	}
	if nowUs > expires+pol.Grace.Microseconds() {
		return reason.New(reason.Expired, fmt.Sprintf("expired %v ago", time.Duration(nowUs-expires)*time.Microsecond))
	}
	lvl, hasRisk, err := pol.EffectiveRisk(p)
	if err != nil {
		return err
	}
	if p.TTLSeconds != nil {
		if *p.TTLSeconds <= 0 || *p.TTLSeconds > 1<<40 || window != *p.TTLSeconds*1e6 {
			return reason.New(reason.TTLPolicyMismatch, fmt.Sprintf("ttl_seconds %d does not match the window of %v", *p.TTLSeconds, time.Duration(window)*time.Microsecond))
		}
	}
	if pol.Strict {
		if p.RiskLevel == nil {
			return reason.New(reason.TTLPolicyMismatch, "strict mode requires risk_level")
		}
		if window > lvl.TTL.Microseconds() {
			return reason.New(reason.TTLPolicyMismatch, fmt.Sprintf("window %v exceeds the %s TTL of %v", time.Duration(window)*time.Microsecond, lvl.Name, lvl.TTL))
		}
		return nil
	}
	if p.TTLSeconds == nil && hasRisk && window != lvl.TTL.Microseconds() {
		return reason.New(reason.TTLPolicyMismatch, fmt.Sprintf("window %v is not the %s TTL of %v", time.Duration(window)*time.Microsecond, lvl.Name, lvl.TTL))
	}
	return nil
}

// ValidateAIProvenance checks that ai_provenance, when present, names its source.
func ValidateAIProvenance(p *Packet) error {
	if p.AIProvenance == nil {
		return nil
	}
	src, ok := p.AIProvenance.Get("source")
	if !ok || src.Kind != canonical.String || src.Str == "" {
		return reason.New(reason.AIProvenanceInvalid, `ai_provenance must carry a non-empty string "source"`)
	}
	return nil
}
