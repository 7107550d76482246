package packet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
)

// ErrInvalidHandoff is wrapped by every error [Build] returns for a handoff it refuses to
// sign (as opposed to a signer that fails). The error is a *[BuildError].
var ErrInvalidHandoff = errors.New("packet: invalid handoff")

// BuildError is a handoff [Build] refuses to sign. Field names what is wrong, by its wire
// name: a packet field ("to_agent", "from_agent", "intent", "context",
// "permissions.allowed_actions", "permissions.max_tool_calls", "constraints", "risk_level",
// "ttl_seconds", "issued_at", "ai_provenance", "provenance", "task_id", "task_type",
// "goal", "memory_refs", "signature_algo"), or
// "capabilities" (the chain passed with [WithCapabilities]) or "envelope" (the whole,
// e.g. over the size receivers accept).
type BuildError struct {
	Field string
	Msg   string
}

func (e *BuildError) Error() string { return "packet: " + e.Field + ": " + e.Msg }

// Is reports whether target is ErrInvalidHandoff.
func (e *BuildError) Is(target error) bool { return target == ErrInvalidHandoff }

func invalid(field, format string, args ...any) *BuildError {
	return &BuildError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Link is what [Build] needs to know of one capability of the chain a handoff is sent
// under: its token, what it grants and to whom. Build checks the chain's shape and takes
// its limits; it does not verify signatures (the receiver does, against its registry).
// Build never modifies a Link's slices or pointers.
type Link struct {
	Token              string
	CapabilityID       string
	ParentCapabilityID *string // nil for a root
	IssuerAgent        string
	SubjectAgent       string
	Permissions        Permissions
	Constraints        *Constraints // nil: the constraints in force above it
	ExpiresAt          canonical.Timestamp
}

// Linker is a capability that can describe itself to Build; *capability.Capability is one.
type Linker interface {
	Link() Link
}

// BuildOption configures [Build].
type BuildOption func(*buildConfig) error

type buildConfig struct {
	from         string
	actions      []string
	actionsSet   bool
	maxToolCalls *int64
	risk         string
	ttl          time.Duration
	context      *canonical.Value
	constraints  *Constraints
	provenance   *Provenance
	aiProvenance *canonical.Value
	taskID       string
	taskType     *string
	goal         *string
	memoryRefs   []string
	rule         Rule
	issuedAt     time.Time
	policy       TimePolicy
	links        []Link
	limits       Limits
}

// WithAgentID names the sender when its registered id is not the id derived from the
// signing key: after a key rotation the agent keeps its id and signs with the new key.
// The receiver's registry binds the id to the key.
func WithAgentID(id string) BuildOption {
	return func(c *buildConfig) error {
		if err := CheckAgentID(id); err != nil {
			return invalid("from_agent", "%v", err)
		}
		c.from = id
		return nil
	}
}

// WithActions sets permissions.allowed_actions. Without it a handoff under a capability
// asks for the leaf capability's actions, and one without a capability for none.
func WithActions(actions ...string) BuildOption {
	return func(c *buildConfig) error {
		for _, a := range actions {
			switch {
			case a == "":
				return invalid("permissions.allowed_actions", "an action name is empty")
			case strings.Contains(a, ","):
				return invalid("permissions.allowed_actions", "action %q contains a comma: give each action on its own", a)
			}
		}
		c.actions, c.actionsSet = slices.Clone(actions), true
		return nil
	}
}

// WithMaxToolCalls sets permissions.max_tool_calls (n ≥ 0). Without it a handoff under a
// capability takes the leaf capability's limit, and one without a capability has none.
func WithMaxToolCalls(n int64) BuildOption {
	return func(c *buildConfig) error {
		if n < 0 {
			return invalid("permissions.max_tool_calls", "%d is negative", n)
		}
		c.maxToolCalls = &n
		return nil
	}
}

// WithRisk declares risk_level (a level of the time policy: "read" or "write" by
// default). Without it the level is the effective risk of the actions, the lowest level
// when they imply none.
func WithRisk(level string) BuildOption {
	return func(c *buildConfig) error { c.risk = level; return nil }
}

// WithTTL sets the validity window, a whole number of seconds, at least one. Without it
// the window is the policy TTL of the effective risk (the worst of risk_level and the
// risk the actions imply), which is what a receiver in the default mode expects when
// ttl_seconds is absent and the most a receiver in strict mode accepts.
func WithTTL(d time.Duration) BuildOption {
	return func(c *buildConfig) error {
		if d < time.Second || d%time.Second != 0 {
			return invalid("ttl_seconds", "the window %v is not a whole number of seconds, at least 1s", d)
		}
		c.ttl = d
		return nil
	}
}

// WithContext sets the packet's context, a JSON object.
func WithContext(v canonical.Value) BuildOption {
	return func(c *buildConfig) error {
		if v.Kind != canonical.Object {
			return invalid("context", "must be a JSON object, not %s", v.Kind)
		}
		cp, err := cloneValue(&v, 0)
		if err != nil {
			return invalid("context", "%v", err)
		}
		c.context = &cp
		return nil
	}
}

// WithConstraints sets the packet's constraints. Under a capability, a constraint left
// unset (nil, or requires_human_review false) takes the value in force along the chain,
// and one set must be at least as strict.
func WithConstraints(k Constraints) BuildOption {
	return func(c *buildConfig) error {
		if k.MaxRuntimeSeconds != nil && *k.MaxRuntimeSeconds < 0 {
			return invalid("constraints", "max_runtime_seconds %d is negative", *k.MaxRuntimeSeconds)
		}
		c.constraints = k.Clone()
		return nil
	}
}

// WithProvenance sets the signed provenance (origin workflow, delegation depth ≥ 0).
func WithProvenance(p Provenance) BuildOption {
	return func(c *buildConfig) error {
		if p.DelegationDepth < 0 {
			return invalid("provenance", "delegation_depth %d is negative", p.DelegationDepth)
		}
		if p.OriginWorkflow != nil {
			s := *p.OriginWorkflow
			p.OriginWorkflow = &s
		}
		c.provenance = &p
		return nil
	}
}

// WithAIProvenance marks the payload AI-generated: v is the ai_provenance object, which
// must carry a non-empty string "source".
func WithAIProvenance(v canonical.Value) BuildOption {
	return func(c *buildConfig) error {
		if v.Kind != canonical.Object {
			return invalid("ai_provenance", "must be a JSON object, not %s", v.Kind)
		}
		if err := ValidateAIProvenance(&Packet{AIProvenance: &v}); err != nil {
			return invalid("ai_provenance", "%v", err)
		}
		cp, err := cloneValue(&v, 0)
		if err != nil {
			return invalid("ai_provenance", "%v", err)
		}
		c.aiProvenance = &cp
		return nil
	}
}

// WithTaskID sets task_id (default: a random id from [NewID]).
func WithTaskID(id string) BuildOption {
	return func(c *buildConfig) error {
		if id == "" {
			return invalid("task_id", "is empty")
		}
		c.taskID = id
		return nil
	}
}

// WithTaskType sets task_type.
func WithTaskType(t string) BuildOption {
	return func(c *buildConfig) error { c.taskType = &t; return nil }
}

// WithGoal sets goal.
func WithGoal(g string) BuildOption {
	return func(c *buildConfig) error { c.goal = &g; return nil }
}

// WithMemoryRefs sets memory_refs.
func WithMemoryRefs(refs ...string) BuildOption {
	return func(c *buildConfig) error { c.memoryRefs = slices.Clone(refs); return nil }
}

// WithRule signs under rule r (default Rule04; Rule033 for a 0.3.3 verifier).
func WithRule(r Rule) BuildOption {
	return func(c *buildConfig) error {
		if r != Rule04 && r != Rule033 {
			return invalid("signature_algo", "unknown signing rule %q (want %q or %q)", r, Rule04, Rule033)
		}
		c.rule = r
		return nil
	}
}

// WithIssuedAt sets issued_at (default: now), recorded in UTC with microsecond precision.
func WithIssuedAt(t time.Time) BuildOption {
	return func(c *buildConfig) error {
		if y := t.UTC().Year(); y < 1 || y > 9998 {
			return invalid("issued_at", "%s is outside the years 1-9998", t)
		}
		c.issuedAt = t
		return nil
	}
}

// WithTimePolicy sets the risk levels and action map the TTL is chosen by (default: read
// 900 s and write 120 s, actions classified by StrictActionRisk). Use the receiver's policy.
func WithTimePolicy(pol TimePolicy) BuildOption {
	return func(c *buildConfig) error {
		if err := pol.Check(); err != nil {
			return invalid("ttl_seconds", "time policy: %v", err)
		}
		c.policy = pol
		return nil
	}
}

// WithCapabilities sends the handoff under a capability chain, root first, leaf last. The
// leaf must be granted by the sender to the receiver and each link must name the one
// before it as parent and be issued by its subject. The leaf becomes the packet's
// capability_token, the whole chain travels in the envelope's "capabilities" (when it is
// longer than the root alone), and the handoff takes its limits from the chain: see
// [Build].
func WithCapabilities(chain ...Linker) BuildOption {
	return func(c *buildConfig) error {
		c.links = make([]Link, len(chain))
		for i, l := range chain {
			if l == nil {
				return invalid("capabilities", "capability %d is missing", i)
			}
			c.links[i] = l.Link()
		}
		return nil
	}
}

// WithLimits sets the decoding limits of the receivers (default: 1 MiB, depth 64): Build
// refuses an envelope they would refuse to parse.
func WithLimits(lim Limits) BuildOption {
	return func(c *buildConfig) error { c.limits = lim; return nil }
}

// Build signs a handoff: a packet from signer's agent to agent to asking it to do intent,
// in its envelope, ready to send. It does what a careful sender does by hand:
//
//   - packet_id, task_id and nonce are random ([NewID]); issued_at is now;
//   - risk_level is the declared risk ([WithRisk]) or the effective risk of the actions,
//     and the window ([WithTTL]) defaults to the policy TTL of the effective risk;
//     ttl_seconds records it;
//   - under a capability chain ([WithCapabilities]), unset limits are inherited from the
//     chain (allowed actions and max_tool_calls from the leaf, constraints in force along
//     it), and limits set wider than the chain's are refused here rather than rejected
//     by the receiver; an expired link, a chain out of order, or a leaf that is not a
//     grant from the sender to the receiver are refused too;
//   - the chain's unsigned record names the sender, as the reference writes it;
//   - the signature is checked before the envelope is returned (a remote signer is not
//     trusted), and the envelope must parse back under the receivers' limits ([WithLimits]).
//
// Errors for the handoff's inputs are *BuildError values wrapping ErrInvalidHandoff; a
// failing signer's error is wrapped as it is.
func Build(signer identity.Signer, to, intent string, opts ...BuildOption) (*Envelope, error) {
	// By default the TTL follows the fail-safe classification (StrictActionRisk): an action
	// that is not plainly a read gets the short write window, which verifiers in both
	// modes accept (ttl_seconds is signed), where the reference's map could give a write
	// the read window a strict receiver refuses.
	cfg := buildConfig{rule: Rule04, policy: TimePolicy{Skew: DefaultSkew, Strict: true}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if signer == nil {
		return nil, errors.New("packet: no signer")
	}
	pub := signer.Public()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("packet: the signer's public key is %d bytes, not an Ed25519 key", len(pub))
	}
	derived := identity.AgentIDOf(pub)
	from := cfg.from
	if from == "" {
		from = derived
	}
	if err := CheckAgentID(to); err != nil {
		return nil, invalid("to_agent", "%v", err)
	}
	if intent == "" {
		return nil, invalid("intent", "is empty: say what the receiver is asked to do")
	}
	issued := cfg.issuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	issued = issued.UTC().Truncate(time.Microsecond)

	p := &Packet{
		PacketID:     NewID(),
		TaskID:       cfg.taskID,
		FromAgent:    from,
		ToAgent:      to,
		Nonce:        NewID(),
		Intent:       intent,
		TaskType:     cfg.taskType,
		Goal:         cfg.goal,
		MemoryRefs:   cfg.memoryRefs,
		Provenance:   cfg.provenance,
		AIProvenance: cfg.aiProvenance,
	}
	if p.TaskID == "" {
		p.TaskID = NewID()
	}
	if cfg.context != nil {
		p.Context = *cfg.context
	}
	if err := applyChain(p, &cfg, issued); err != nil {
		return nil, err
	}

	risk := cfg.risk
	if risk == "" {
		lvl, ok, err := cfg.policy.EffectiveRisk(p)
		switch {
		case err != nil:
			return nil, invalid("risk_level", "%v", err)
		case ok:
			risk = lvl.Name
		default:
			risk = cfg.policy.levels()[0].Name
		}
	}
	policyTTL, err := cfg.policy.TTLFor(risk, p.Permissions.AllowedActions)
	if err != nil {
		return nil, invalid("risk_level", "%v", err)
	}
	p.RiskLevel = &risk
	ttl := cfg.ttl
	if ttl == 0 {
		ttl = policyTTL
	}
	if ttl < time.Second || ttl%time.Second != 0 {
		return nil, invalid("ttl_seconds", "the policy TTL %v of %s is not a whole number of seconds", ttl, risk)
	}
	secs := int64(ttl / time.Second)
	p.TTLSeconds = &secs
	p.IssuedAt = canonical.TimestampOf(issued)
	expires := issued.Add(ttl)
	if expires.Year() > 9999 {
		return nil, invalid("ttl_seconds", "the window %v ends after the year 9999", ttl)
	}
	p.ExpiresAt = canonical.TimestampOf(expires)

	if err := checkUTF8(p); err != nil {
		return nil, err
	}
	// Every input was checked above, so an error here is the signer's.
	if err := p.sign(signer, cfg.rule, from != derived); err != nil {
		return nil, err
	}
	if rule, err := p.VerifySignature(pub); err != nil || rule != cfg.rule {
		return nil, fmt.Errorf("packet: the signer returned a signature that does not verify under its public key")
	}
	env := envelopeOf(p, cfg.links)
	wire, err := env.MarshalJSON()
	if err != nil {
		return nil, invalid("envelope", "%v", err)
	}
	if _, err := ParseEnvelope(wire, cfg.limits); err != nil {
		return nil, invalid("envelope", "receivers would refuse it: %v", err)
	}
	return env, nil
}

// applyChain checks the capability chain and fills in the packet's permissions and
// constraints from it and from the options.
func applyChain(p *Packet, cfg *buildConfig, issued time.Time) error {
	p.Permissions.AllowedActions = cfg.actions
	p.Permissions.MaxToolCalls = cfg.maxToolCalls
	p.Constraints = cfg.constraints
	if p.Permissions.AllowedActions == nil {
		p.Permissions.AllowedActions = []string{}
	}
	links := cfg.links
	if len(links) == 0 {
		return nil
	}
	for i := range links {
		l := &links[i]
		if l.Token == "" {
			return invalid("capabilities", "capability %d (%q) has no token", i, l.CapabilityID)
		}
		if i == 0 {
			if l.ParentCapabilityID != nil {
				return invalid("capabilities", "capability 0 (%q) names a parent (%q): pass the chain root first, every link from the root to the leaf", l.CapabilityID, *l.ParentCapabilityID)
			}
		} else {
			prev := &links[i-1]
			if l.ParentCapabilityID == nil || *l.ParentCapabilityID != prev.CapabilityID {
				return invalid("capabilities", "capability %d (%q) is not derived from capability %d (%q): pass the chain root first, every link from the root to the leaf", i, l.CapabilityID, i-1, prev.CapabilityID)
			}
			if l.IssuerAgent != prev.SubjectAgent {
				return invalid("capabilities", "capability %d (%q) is issued by %s, not by %s, the subject of its parent", i, l.CapabilityID, l.IssuerAgent, prev.SubjectAgent)
			}
		}
		if l.ExpiresAt.Micros <= issued.UnixMicro() {
			return invalid("capabilities", "capability %d (%q) expired at %s", i, l.CapabilityID, l.ExpiresAt.Time().Format(time.RFC3339))
		}
	}
	leaf := &links[len(links)-1]
	if leaf.SubjectAgent != p.ToAgent {
		return invalid("capabilities", "the leaf capability (%q) is granted to %s, not to the receiver %s", leaf.CapabilityID, leaf.SubjectAgent, p.ToAgent)
	}
	if leaf.IssuerAgent != p.FromAgent {
		return invalid("capabilities", "the leaf capability (%q) is granted by %s, not by the sender %s", leaf.CapabilityID, leaf.IssuerAgent, p.FromAgent)
	}
	token := leaf.Token
	p.CapabilityToken = &token

	// Permissions: inherit what is unset, refuse what is wider.
	if !cfg.actionsSet {
		p.Permissions.AllowedActions = slices.Clone(leaf.Permissions.AllowedActions)
		if p.Permissions.AllowedActions == nil {
			p.Permissions.AllowedActions = []string{}
		}
	}
	if a, ok := leaf.Permissions.Allows(p.Permissions.AllowedActions); !ok {
		return invalid("permissions.allowed_actions", "action %q is not granted by the capability %q", a, leaf.CapabilityID)
	}
	if lm := leaf.Permissions.MaxToolCalls; lm != nil {
		if p.Permissions.MaxToolCalls == nil {
			n := *lm
			p.Permissions.MaxToolCalls = &n
		} else if *p.Permissions.MaxToolCalls > *lm {
			return invalid("permissions.max_tool_calls", "%d exceeds the limit of %d of the capability %q", *p.Permissions.MaxToolCalls, *lm, leaf.CapabilityID)
		}
	}

	// Constraints: the ones in force at the leaf (the last link that sets any).
	var inForce *Constraints
	for i := len(links) - 1; i >= 0 && inForce == nil; i-- {
		inForce = links[i].Constraints
	}
	if inForce == nil {
		return nil
	}
	k := p.Constraints
	if k == nil {
		k = &Constraints{}
	}
	if k.MaxRuntimeSeconds == nil && inForce.MaxRuntimeSeconds != nil {
		n := *inForce.MaxRuntimeSeconds
		k.MaxRuntimeSeconds = &n
	}
	if k.DataBoundary == nil && inForce.DataBoundary != nil {
		s := *inForce.DataBoundary
		k.DataBoundary = &s
	}
	k.RequiresHumanReview = k.RequiresHumanReview || inForce.RequiresHumanReview
	if msg := looser(k, inForce); msg != "" {
		return invalid("constraints", "%s, the constraint in force along the capability chain", msg)
	}
	p.Constraints = k
	return nil
}

// looser describes how c is looser than limit, or returns "": the rule a capability's
// constraints attenuate by, and the one the receiver applies to a packet.
func looser(c, limit *Constraints) string {
	if lm := limit.MaxRuntimeSeconds; lm != nil && *c.MaxRuntimeSeconds > *lm {
		return fmt.Sprintf("max_runtime_seconds %d exceeds the limit %d", *c.MaxRuntimeSeconds, *lm)
	}
	if lb := limit.DataBoundary; lb != nil && *c.DataBoundary != *lb {
		return fmt.Sprintf("data_boundary %q is not %q", *c.DataBoundary, *lb)
	}
	return ""
}

// envelopeOf wraps p with the reference's unsigned chain record (one hop: the sender and
// what it delegates) and the capability tokens when the chain is longer than its root.
func envelopeOf(p *Packet, links []Link) *Envelope {
	perms := canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{
		{Key: "allowed_actions", Value: stringsValue(p.Permissions.AllowedActions)},
		{Key: "max_tool_calls", Value: optIntValue(p.Permissions.MaxToolCalls)},
	}}
	env := &Envelope{
		Packet: p,
		Chain: &Chain{
			PacketIDs: []string{p.PacketID},
			Agents:    []string{p.FromAgent},
			Hops: []canonical.Value{{Kind: canonical.Object, Obj: []canonical.Member{
				{Key: "agent_id", Value: canonical.Value{Kind: canonical.String, Str: p.FromAgent}},
				{Key: "delegated_permissions", Value: perms},
			}}},
		},
	}
	if len(links) > 1 {
		env.Capabilities = make([]string, len(links))
		for i := range links {
			env.Capabilities[i] = links[i].Token
		}
	}
	return env
}

// checkUTF8 names the first string field that is not valid UTF-8: it has no JSON
// spelling that decodes back to it, so no receiver could verify the signature.
func checkUTF8(p *Packet) *BuildError {
	bad := func(s string) bool { return !utf8.ValidString(s) }
	switch {
	case bad(p.Intent):
		return invalid("intent", "is not valid UTF-8")
	case bad(p.TaskID):
		return invalid("task_id", "is not valid UTF-8")
	case p.TaskType != nil && bad(*p.TaskType):
		return invalid("task_type", "is not valid UTF-8")
	case p.Goal != nil && bad(*p.Goal):
		return invalid("goal", "is not valid UTF-8")
	case slices.ContainsFunc(p.MemoryRefs, bad):
		return invalid("memory_refs", "an entry is not valid UTF-8")
	case slices.ContainsFunc(p.Permissions.AllowedActions, bad):
		return invalid("permissions.allowed_actions", "an action is not valid UTF-8")
	case p.Constraints != nil && p.Constraints.DataBoundary != nil && bad(*p.Constraints.DataBoundary):
		return invalid("constraints", "data_boundary is not valid UTF-8")
	case p.Provenance != nil && p.Provenance.OriginWorkflow != nil && bad(*p.Provenance.OriginWorkflow):
		return invalid("provenance", "origin_workflow is not valid UTF-8")
	case !validValue(&p.Context):
		return invalid("context", "a string is not valid UTF-8")
	case p.AIProvenance != nil && !validValue(p.AIProvenance):
		return invalid("ai_provenance", "a string is not valid UTF-8")
	}
	return nil
}

// validValue reports whether every string and key of v is valid UTF-8.
func validValue(v *canonical.Value) bool {
	switch v.Kind {
	case canonical.String:
		return utf8.ValidString(v.Str)
	case canonical.Array:
		for i := range v.Arr {
			if !validValue(&v.Arr[i]) {
				return false
			}
		}
	case canonical.Object:
		for i := range v.Obj {
			if !utf8.ValidString(v.Obj[i].Key) || !validValue(&v.Obj[i].Value) {
				return false
			}
		}
	}
	return true
}

// cloneValue deep-copies v, so that signing (which sorts a 0.3.3 context) never touches
// the caller's value. Nesting deeper than any receiver parses is refused.
func cloneValue(v *canonical.Value, depth int) (canonical.Value, error) {
	if depth > canonical.DefaultMaxDepth {
		return canonical.Value{}, fmt.Errorf("nested deeper than %d levels", canonical.DefaultMaxDepth)
	}
	out := *v
	switch v.Kind {
	case canonical.Array:
		out.Arr = make([]canonical.Value, len(v.Arr))
		for i := range v.Arr {
			c, err := cloneValue(&v.Arr[i], depth+1)
			if err != nil {
				return canonical.Value{}, err
			}
			out.Arr[i] = c
		}
	case canonical.Object:
		out.Obj = make([]canonical.Member, len(v.Obj))
		for i := range v.Obj {
			c, err := cloneValue(&v.Obj[i].Value, depth+1)
			if err != nil {
				return canonical.Value{}, err
			}
			out.Obj[i] = canonical.Member{Key: v.Obj[i].Key, Value: c}
		}
	}
	return out, nil
}

func stringsValue(ss []string) canonical.Value {
	v := canonical.Value{Kind: canonical.Array, Arr: make([]canonical.Value, len(ss))}
	for i, s := range ss {
		v.Arr[i] = canonical.Value{Kind: canonical.String, Str: s}
	}
	return v
}

func optIntValue(n *int64) canonical.Value {
	if n == nil {
		return canonical.Value{}
	}
	return canonical.Value{Kind: canonical.Int, Str: strconv.FormatInt(*n, 10)}
}

// maxAgentIDLen bounds an agent id after its "agent:" prefix.
const maxAgentIDLen = 128

// CheckAgentID reports, by returning nil, that id looks like an agent id: "agent:" and
// then 1 to 128 of the characters A-Z a-z 0-9 + / = . _ - : @. The reference derives
// "agent:" and 16 base64 characters from the key (identity.AgentID); a registry may name
// an agent otherwise within this alphabet. It catches the usual slips (a key file name,
// a PEM, an unexpanded shell variable, stray spaces or quotes) before anything is signed.
func CheckAgentID(id string) error {
	const prefix = "agent:"
	show := id
	if len(show) > 40 {
		show = show[:40] + "…"
	}
	if !utf8.ValidString(show) {
		show = strconv.QuoteToASCII(show)
	} else {
		show = strconv.Quote(show)
	}
	switch {
	case id == "":
		return errors.New("no agent id (want agent:… as keygen prints)")
	case len(id) <= len(prefix) || id[:len(prefix)] != prefix:
		return fmt.Errorf("%s does not look like an agent id (want agent:… as keygen prints)", show)
	case len(id)-len(prefix) > maxAgentIDLen:
		return fmt.Errorf("%s is too long for an agent id (at most %d characters after agent:)", show, maxAgentIDLen)
	}
	for i := len(prefix); i < len(id); i++ {
		b := id[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		switch b {
		case '+', '/', '=', '.', '_', '-', ':', '@':
			ok = true
		}
		if !ok {
			return fmt.Errorf("%s does not look like an agent id: it contains %q", show, rune(b))
		}
	}
	return nil
}
