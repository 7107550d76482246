// Package verify is the verification gate: the whole pipeline, in order, in one place
// (Verifier.verify), returning a Decision with a stable reason code. spec/protocol.md
// describes each step.
//
// The order is the point. A nonce is consumed only by a packet that passed every other
// check (the reference burns it first, so a forged copy kills the real packet); the replay
// store never evicts a live nonce; and a store failure rejects with store_unavailable
// (fail closed). The receiver decides: a verifier that knows whom it serves
// (WithRecipient, Request.Recipient) refuses packets addressed to anyone else.
package verify

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// Decision values.
const (
	Accept = "ACCEPT"
	Reject = "REJECT"
)

// Flags attached to accepted decisions.
const (
	FlagOverlapUsed = "token_overlap_used"
	FlagAIGenerated = "ai_generated_payload"
)

// Decision is the outcome of verifying one envelope. Its JSON form is the CLI and HTTP
// contract: {"decision", "reason", "packet_id", "detail"} plus optional flags.
type Decision struct {
	Decision string      `json:"decision"`
	Reason   reason.Code `json:"reason"`
	PacketID string      `json:"packet_id"`
	Detail   string      `json:"detail"`
	Flags    []string    `json:"flags,omitempty"`
	Rule     packet.Rule `json:"signing_rule,omitempty"`
	// DryRun is set on decisions of a dry run, which consumed no nonce and recorded no
	// deny: ACCEPT means the packet would be accepted now. Its audit events (WithAudit)
	// were still emitted, marked dry_run.
	DryRun bool `json:"dry_run,omitempty"`

	// The verified handoff, set when the envelope parsed (and the chain when it verified).
	Envelope *packet.Envelope         `json:"-"`
	Chain    []*capability.Capability `json:"-"`
	// Digest is the SHA-256 of the packet's signed bytes (what approvals name), set once
	// the signature verified when approvals are involved, an audit sink is set, or the
	// Verifier was built WithPacketDigests; zero otherwise.
	Digest   [32]byte `json:"-"`
	Err      error    `json:"-"` // the failure, for errors.Is/As
	AuditErr error    `json:"-"` // the audit sink's failure, if any

	// For the audit event: how a human's deny rejected the packet, and whom the verifier
	// served.
	deny      denyKind
	recipient string
}

// denyKind says how a human's deny rejected a packet: by a deny attached to the envelope,
// or by a deny recorded earlier (the packet resent without it).
type denyKind uint8

const (
	noDeny denyKind = iota
	denyAttached
	denyRecorded
)

// Accepted reports whether the decision is ACCEPT.
func (d *Decision) Accepted() bool { return d.Decision == Accept }

// Registry is what the pipeline needs from the agent registry (*registry.Registry, or
// registry.SelfCertified without one).
type Registry interface {
	Resolve(agentID, publicKeyPEM string, at time.Time) (registry.Binding, error)
	KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool
	HasRole(agentID, role string) bool
}

// ReplayStore is a replay.Store: record-if-new with an expiry.
type ReplayStore interface {
	Record(ctx context.Context, key []byte, expiresAt time.Time) (fresh bool, err error)
}

// RevocationStore answers revocation lookups (a revocation.Store).
type RevocationStore interface {
	Revoked(ctx context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error)
}

// ActionRule is the receiver's rule for one action name (see ActionPolicy).
type ActionRule struct {
	// Risk is the risk level name of the action; "" leaves it to the time policy's
	// classifier (the reference-compatible map, or the strict allow-list).
	Risk string
	// Review: a packet asking for this action needs signed human approvals.
	Review bool
	// Deny: a packet asking for this action is never accepted (policy_denied).
	Deny bool
	// Reject: the action is unknown to a policy that refuses unknown actions
	// (action_not_authorized).
	Reject bool
}

// ActionPolicy is the receiver's action catalogue (a *policy.Policy is one).
type ActionPolicy interface {
	ActionRule(action string) ActionRule
}

// PolicyHook is a caller-supplied policy check, run after the built-in ones. A non-nil
// error rejects with policy_denied (or with the code of a *reason.Error it returns).
type PolicyHook func(ctx context.Context, h *Handoff) error

// Handoff is what a policy hook sees: the parsed envelope and its verified chain.
type Handoff struct {
	Envelope *packet.Envelope
	Chain    []*capability.Capability
	Now      time.Time
}

// Verifier runs the pipeline. It is safe for concurrent use.
type Verifier struct {
	reg        Registry
	replay     ReplayStore
	revoked    RevocationStore
	denies     DenyStore // where a signed deny is remembered: revoked, which must record them
	recipient  string
	actions    ActionPolicy
	sink       audit.Sink
	time       packet.TimePolicy
	limits     canonical.Limits
	maxDepth   int
	requireCap bool
	threshold  int
	unsignedOK bool // insecure: honour context["human_approval"]
	aiWrite    bool // AI-generated write handoffs need a human approval
	hooks      []PolicyHook
	now        func() time.Time
	producer   string
	digests    bool // every verified signature yields Decision.Digest
}

// DenyStore remembers signed denies (a revocation.Store is one): a packet a human denied
// stays denied when it is resent without the deny.
type DenyStore interface {
	Revoke(ctx context.Context, e revocation.Entry) error
}

// Option configures a Verifier.
type Option func(*Verifier) error

// New returns a Verifier over a registry and a replay store. Both are required: a gate
// without replay protection is not a gate.
func New(reg Registry, replay ReplayStore, opts ...Option) (*Verifier, error) {
	if isNil(reg) || isNil(replay) {
		return nil, errors.New("verify: a registry and a replay store are required")
	}
	v := &Verifier{reg: reg, replay: replay, sink: audit.Discard(), time: packet.DefaultTimePolicy(),
		maxDepth: 5, threshold: 1, now: time.Now, producer: "trusthandoff-go"}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("verify: nil option")
		}
		if err := o(v); err != nil {
			return nil, err
		}
	}
	if err := v.time.Check(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if v.actions != nil {
		v.time.ActionRisk = actionRisk(v.actions, v.time.ActionRisk, v.time.Strict)
	}
	if v.revoked == nil {
		// Denies must stick even without a shared store: remember them in this process.
		m := revocation.NewMemory(revocation.MemoryConfig{Now: v.now})
		v.revoked, v.denies = m, m
	} else {
		ds, ok := v.revoked.(DenyStore)
		if !ok {
			return nil, errors.New("verify: the revocation store cannot record denies (it needs a Revoke method)")
		}
		v.denies = ds
	}
	return v, nil
}

// isNil reports whether an interface holds nothing or a nil pointer.
func isNil(x any) bool {
	if x == nil {
		return true
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// actionRisk classifies an action by the receiver's catalogue, then by the classifier the
// time policy would have used.
func actionRisk(ap ActionPolicy, base func(string) string, strict bool) func(string) string {
	if base == nil {
		base = packet.DefaultActionRisk
		if strict {
			base = packet.StrictActionRisk
		}
	}
	return func(a string) string {
		if r := ap.ActionRule(a).Risk; r != "" {
			return r
		}
		return base(a)
	}
}

// WithRevocations checks capability and agent ids against a revocation store, and
// records signed denies in it (so they hold on every verifier sharing the store).
// Without it, the verifier keeps revocations and denies in memory.
func WithRevocations(s RevocationStore) Option {
	return func(v *Verifier) error {
		if isNil(s) {
			return errors.New("verify: nil revocation store")
		}
		v.revoked = s
		return nil
	}
}

// WithRecipient makes the verifier serve one agent: a packet whose to_agent is anyone
// else is rejected wrong_recipient (a packet for B is worthless at C's gate).
// Request.Recipient overrides it for one call.
func WithRecipient(agentID string) Option {
	return func(v *Verifier) error {
		if agentID == "" {
			return errors.New("verify: empty recipient")
		}
		v.recipient = agentID
		return nil
	}
}

// WithActionPolicy applies the receiver's action catalogue: per-action risk, review and
// deny, and what happens to actions it does not know.
func WithActionPolicy(ap ActionPolicy) Option {
	return func(v *Verifier) error {
		if isNil(ap) {
			return errors.New("verify: nil action policy")
		}
		v.actions = ap
		return nil
	}
}

// WithAudit sends an event for every decision to sink. When the sink fails, an accepted
// handoff is rejected with store_unavailable (nothing is granted off the record), and every
// decision carries the failure in AuditErr.
func WithAudit(sink audit.Sink, producerID string) Option {
	return func(v *Verifier) error {
		v.sink = sink
		if producerID != "" {
			v.producer = producerID
		}
		return nil
	}
}

// WithTimePolicy sets skew, grace, TTL levels, the action map and strict mode, replacing
// the default policy (packet.DefaultTimePolicy) as a whole: a zero Skew allows no skew.
// WithSkew, WithGrace and WithStrict change one knob.
func WithTimePolicy(p packet.TimePolicy) Option {
	return func(v *Verifier) error { v.time = p; return nil }
}

// WithSkew sets the allowed clock skew for issued_at (default 30 s, at most 300 s; 0
// allows none).
func WithSkew(d time.Duration) Option {
	return func(v *Verifier) error { v.time.Skew = d; return nil }
}

// WithGrace sets the allowed lateness after expires_at (default 0, at most 60 s).
func WithGrace(d time.Duration) Option {
	return func(v *Verifier) error { v.time.Grace = d; return nil }
}

// WithStrict turns on strict mode: risk_level required, the window capped at the policy
// TTL of the effective risk, actions classified by allow-list (packet.StrictActionRisk).
func WithStrict() Option { return func(v *Verifier) error { v.time.Strict = true; return nil } }

// WithTTL sets the TTL of each risk level, least risky first (default read 900 s, write
// 120 s).
func WithTTL(levels ...packet.RiskLevel) Option {
	return func(v *Verifier) error {
		if len(levels) == 0 {
			return errors.New("verify: no risk levels")
		}
		v.time.Levels = slices.Clone(levels)
		return nil
	}
}

// WithLimits bounds envelope size and nesting depth.
func WithLimits(l canonical.Limits) Option {
	return func(v *Verifier) error { v.limits = l; return nil }
}

// WithMaxDepth sets the maximum delegation depth (default 5).
func WithMaxDepth(n int) Option {
	return func(v *Verifier) error {
		if n < 0 {
			return errors.New("verify: negative max depth")
		}
		v.maxDepth = n
		return nil
	}
}

// WithRequireCapability rejects handoffs that carry no capability.
func WithRequireCapability() Option {
	return func(v *Verifier) error { v.requireCap = true; return nil }
}

// WithApprovalThreshold sets how many distinct approvers must approve (default 1).
func WithApprovalThreshold(n int) Option {
	return func(v *Verifier) error {
		if n < 1 {
			return errors.New("verify: approval threshold must be at least 1")
		}
		v.threshold = n
		return nil
	}
}

// WithAIWriteApproval requires a human approval for write-risk handoffs whose payload is
// AI-generated (ai_provenance set).
func WithAIWriteApproval() Option { return func(v *Verifier) error { v.aiWrite = true; return nil } }

// WithInsecureUnsignedApproval honours the reference's unsigned context["human_approval"]
// flag as an approval. INSECURE: the sender approves its own packet. For migration only.
func WithInsecureUnsignedApproval() Option {
	return func(v *Verifier) error { v.unsignedOK = true; return nil }
}

// WithPolicy adds a caller-supplied policy hook.
func WithPolicy(h PolicyHook) Option {
	return func(v *Verifier) error { v.hooks = append(v.hooks, h); return nil }
}

// WithPacketDigests makes every decision whose packet signature verified carry its Digest
// (a server that answers with the digest, say). It is hashed from the bytes the signature
// check already encoded, so it costs one SHA-256 of the signed bytes.
func WithPacketDigests() Option { return func(v *Verifier) error { v.digests = true; return nil } }

// WithClock sets the clock (tests, and the CLI's --at).
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("verify: nil clock")
		}
		v.now = now
		return nil
	}
}

// Now returns the verifier's current time (its clock).
func (v *Verifier) Now() time.Time { return v.now() }

// TimePolicy returns a copy of the verifier's time policy (skew, grace, levels, mode).
func (v *Verifier) TimePolicy() packet.TimePolicy {
	p := v.time
	p.Levels = slices.Clone(p.Levels)
	return p
}

// Recipient returns the agent the verifier serves ("" when it binds no recipient).
func (v *Verifier) Recipient() string { return v.recipient }

// Audits reports whether v sends its decisions to an audit sink (WithAudit with a sink
// other than audit.Discard()), dry runs included.
func (v *Verifier) Audits() bool { return v.sink != nil && v.sink != audit.Discard() }

// Request holds the settings of one verification.
type Request struct {
	// At verifies as of this instant; zero: the verifier's clock.
	At time.Time
	// Recipient, when set, is the agent this call verifies for (overriding WithRecipient):
	// a service verifying for many agents names the calling one here.
	Recipient string
	// DryRun runs every step and reports replay_detected when the nonce was already used,
	// but consumes no nonce and records no deny: forensic re-verification must not spend
	// a packet. With WithAudit the decision's events are still emitted, marked
	// "dry_run": true, because a forensic check is itself worth recording; a caller that
	// must write nothing verifies without WithAudit.
	DryRun bool
	// Envelope, when set, is verified instead of parsing data: the gate re-verifies a
	// parsed envelope with new approvals without re-encoding its signed packet.
	Envelope *packet.Envelope
}

// Verify runs the pipeline on a wire envelope at the verifier's current time.
func (v *Verifier) Verify(ctx context.Context, data []byte) *Decision {
	return v.VerifyRequest(ctx, data, Request{})
}

// VerifyAt runs the pipeline as of instant now.
func (v *Verifier) VerifyAt(ctx context.Context, data []byte, now time.Time) *Decision {
	return v.VerifyRequest(ctx, data, Request{At: now})
}

// VerifyRequest runs the pipeline on data (or on r.Envelope) with the settings of r.
func (v *Verifier) VerifyRequest(ctx context.Context, data []byte, r Request) *Decision {
	now := r.At
	if now.IsZero() {
		now = v.now()
	}
	if r.Recipient == "" {
		r.Recipient = v.recipient
	}
	d := &Decision{DryRun: r.DryRun, recipient: r.Recipient}
	err := v.verify(ctx, data, now, &r, d)
	v.decide(d, err)
	if aerr := v.emit(ctx, d, now); aerr != nil {
		d.AuditErr = aerr
		if d.Accepted() {
			// Every accepted handoff must be on the record; without it, fail closed. The nonce
			// is already spent, so the sender must re-sign: the price of an unrecorded grant.
			v.decide(d, reason.Wrap(reason.StoreUnavailable, "audit log unavailable; handoff not accepted", aerr))
		}
	}
	return d
}

// verify is the pipeline, top to bottom.
func (v *Verifier) verify(ctx context.Context, data []byte, now time.Time, r *Request, d *Decision) error {
	// 1. size limit, strict parse, structure
	env := r.Envelope
	if env == nil {
		var err error
		if env, err = packet.ParseEnvelope(data, v.limits); err != nil {
			return err
		}
	} else if env.Packet == nil {
		return reason.New(reason.MalformedEnvelope, "envelope has no packet")
	}
	p := env.Packet
	d.Envelope, d.PacketID = env, p.PacketID
	if err := checkStructure(p); err != nil {
		return err
	}
	// 2. identity binding
	bind, err := v.reg.Resolve(p.FromAgent, p.PublicKey, now)
	if err != nil {
		return err
	}
	if err := v.checkAgentRevoked(ctx, p.FromAgent); err != nil {
		return err
	}
	if bind.OverlapUsed {
		d.flag(FlagOverlapUsed)
	}
	// ...and recipient binding: the receiver decides whom it serves.
	if r.Recipient != "" && p.ToAgent != r.Recipient {
		return reason.New(reason.WrongRecipient, fmt.Sprintf("the packet is addressed to %s, not to %s", p.ToAgent, r.Recipient))
	}
	// 3. signature, under either packet rule. The digest names the packet in approvals and
	// in audit events; only verifiers that use it pay for it (one hash of the bytes verified).
	var rule packet.Rule
	if v.digests || v.sink != audit.Discard() || len(env.Approvals) > 0 || v.NeedsApproval(p) {
		rule, d.Digest, err = p.VerifySignatureDigest(bind.PublicKey, bind.Verifier)
	} else {
		rule, err = p.VerifySignatureWith(bind.PublicKey, bind.Verifier)
	}
	if err != nil {
		return err
	}
	d.Rule = rule
	// 4. time window and TTL policy
	if err := packet.ValidateTime(p, now, &v.time); err != nil {
		return err
	}
	// 5. capability chain
	if d.Chain, err = v.checkCapabilities(ctx, env, now, d); err != nil {
		return err
	}
	// 6. delegation depth and loops, from signed data
	if err := v.checkDepth(env, d.Chain); err != nil {
		return err
	}
	// 7. policy: AI provenance, human approval, hooks
	if err := packet.ValidateAIProvenance(p); err != nil {
		return err
	}
	if p.AIProvenance != nil {
		d.flag(FlagAIGenerated)
	}
	if err := v.checkActions(p); err != nil {
		return err
	}
	replayKey := ReplayKey(bind.PublicKey, p.Nonce)
	if err := v.checkDenied(ctx, replayKey, d); err != nil {
		return err
	}
	if err := v.checkApprovals(ctx, env, d.Digest, now, r.DryRun, replayKey, d); err != nil {
		return err
	}
	for _, hook := range v.hooks {
		if err := hook(ctx, &Handoff{Envelope: env, Chain: d.Chain, Now: now}); err != nil {
			var re *reason.Error
			if errors.As(err, &re) {
				return err
			}
			return reason.Wrap(reason.PolicyDenied, "policy hook denied the handoff", err)
		}
	}
	// 8. replay: only now may the nonce be consumed (a dry run only looks)
	if r.DryRun {
		return v.peekNonce(ctx, replayKey)
	}
	return v.recordNonce(ctx, p, replayKey)
}

func (d *Decision) flag(f string) {
	if !slices.Contains(d.Flags, f) {
		d.Flags = append(d.Flags, f)
	}
}

func checkStructure(p *packet.Packet) error {
	switch {
	case p.SignatureAlgo != "Ed25519":
		return reason.New(reason.UnsupportedAlgorithm, fmt.Sprintf("signature_algo %q is not supported (only Ed25519)", p.SignatureAlgo))
	case p.PacketID == "" || p.Nonce == "" || p.FromAgent == "" || p.ToAgent == "":
		return reason.New(reason.MalformedEnvelope, "packet_id, nonce, from_agent and to_agent must be non-empty")
	}
	return checkActionNames("permissions.allowed_actions", p.Permissions.AllowedActions)
}

// checkActionNames refuses action names that cannot be told apart from a list: a name
// with a comma would read as two actions wherever actions are joined (flags, logs).
func checkActionNames(where string, actions []string) error {
	for _, a := range actions {
		if a == "" {
			return reason.New(reason.MalformedEnvelope, where+": an action name is empty")
		}
		if strings.ContainsRune(a, ',') {
			return reason.New(reason.MalformedEnvelope, fmt.Sprintf("%s: action name %q contains a comma", where, a))
		}
	}
	return nil
}

// checkActions applies the receiver's action catalogue: a denied action rejects
// policy_denied, an unknown one (when the policy rejects unknown actions)
// action_not_authorized.
func (v *Verifier) checkActions(p *packet.Packet) error {
	if v.actions == nil {
		return nil
	}
	for _, a := range p.Permissions.AllowedActions {
		switch rule := v.actions.ActionRule(a); {
		case rule.Deny:
			return reason.New(reason.PolicyDenied, fmt.Sprintf("the receiver's policy denies action %q", a))
		case rule.Reject:
			return reason.New(reason.ActionNotAuthorized, fmt.Sprintf("action %q is not in the receiver's policy", a))
		}
	}
	return nil
}

func (v *Verifier) checkAgentRevoked(ctx context.Context, agentID string) error {
	e, revoked, err := v.revoked.Revoked(ctx, revocation.KindAgent, agentID)
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "revocation store unavailable", err)
	}
	if revoked {
		return reason.New(reason.AgentRevoked, fmt.Sprintf("agent %s was revoked at %s", agentID, e.At.UTC().Format(time.RFC3339)))
	}
	return nil
}

// checkCapabilities verifies the capability chain the packet's capability_token ends.
func (v *Verifier) checkCapabilities(ctx context.Context, env *packet.Envelope, now time.Time, d *Decision) ([]*capability.Capability, error) {
	p := env.Packet
	if p.CapabilityToken == nil {
		if len(env.Capabilities) > 0 {
			return nil, reason.New(reason.CapabilityInvalid, "envelope carries capabilities but the packet names no capability_token")
		}
		if v.requireCap {
			return nil, reason.New(reason.CapabilityInvalid, "this deployment requires a capability for every handoff")
		}
		return nil, nil
	}
	tokens := env.Capabilities
	if len(tokens) == 0 {
		tokens = []string{*p.CapabilityToken}
	} else if tokens[len(tokens)-1] != *p.CapabilityToken {
		return nil, reason.New(reason.CapabilityInvalid, "the last capability in the envelope is not the packet's capability_token")
	}
	if len(tokens) > v.maxDepth { // before any signature work: checkDepth would reject it anyway
		return nil, reason.New(reason.DepthExceeded, fmt.Sprintf("capability chain of %d links exceeds the maximum depth %d", len(tokens), v.maxDepth))
	}
	chain := make([]*capability.Capability, len(tokens))
	for i, tok := range tokens {
		c, err := capability.DecodeToken(tok, v.limits)
		if err != nil {
			return nil, err
		}
		if err := checkActionNames("capability "+c.CapabilityID+" allowed_actions", c.Permissions.AllowedActions); err != nil {
			return nil, err
		}
		chain[i] = c
	}
	if err := capability.VerifyChain(chain, v.reg, now, capability.WithSkew(v.time.Skew)); err != nil {
		return nil, err
	}
	// A link signed with a key in its rotation overlap window is flagged like a packet.
	for _, c := range chain {
		if b, err := v.reg.Resolve(c.IssuerAgent, c.PublicKey, now); err == nil && b.OverlapUsed {
			d.flag(FlagOverlapUsed)
		}
	}
	leaf := chain[len(chain)-1]
	if leaf.IssuerAgent != p.FromAgent || leaf.SubjectAgent != p.ToAgent {
		return nil, reason.New(reason.CapabilityInvalid, "the capability is not a grant from the sender to the receiver")
	}
	if err := capability.Authorize(leaf, p.Permissions.AllowedActions, p.Permissions.MaxToolCalls); err != nil {
		return nil, err
	}
	// The packet may not drop a constraint its capability imposes (human review, boundary).
	if err := capability.AuthorizeConstraints(chain, p.Constraints); err != nil {
		return nil, err
	}
	// Revoking a link revokes everything below it; revoking an agent revokes what it issued.
	for _, c := range chain {
		if err := v.checkRevoked(ctx, revocation.KindCapability, c.CapabilityID, "capability "+c.CapabilityID); err != nil {
			return nil, err
		}
		if err := v.checkRevoked(ctx, revocation.KindAgent, c.IssuerAgent, "capability "+c.CapabilityID+" was issued by revoked agent "+c.IssuerAgent); err != nil {
			return nil, err
		}
	}
	return chain, nil
}

func (v *Verifier) checkRevoked(ctx context.Context, kind revocation.Kind, id, what string) error {
	_, revoked, err := v.revoked.Revoked(ctx, kind, id)
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "revocation store unavailable", err)
	}
	if revoked {
		return reason.New(reason.CapabilityRevoked, what+" is revoked")
	}
	return nil
}

// checkDepth bounds the delegation depth and rejects loops. Depth comes from signed data
// (provenance.delegation_depth, the capability chain); the unsigned chain can only make the
// check stricter, never looser.
func (v *Verifier) checkDepth(env *packet.Envelope, chain []*capability.Capability) error {
	depth := int64(len(chain))
	if pr := env.Packet.Provenance; pr != nil {
		if pr.DelegationDepth < 0 {
			return reason.New(reason.DepthExceeded, "provenance.delegation_depth is negative")
		}
		depth = max(depth, pr.DelegationDepth)
	}
	if env.Chain != nil {
		depth = max(depth, int64(len(env.Chain.Hops))-1)
	}
	if depth > int64(v.maxDepth) {
		return reason.New(reason.DepthExceeded, fmt.Sprintf("delegation depth %d exceeds the maximum %d", depth, v.maxDepth))
	}
	if len(chain) > 0 {
		seen := map[string]bool{chain[0].IssuerAgent: true}
		for _, c := range chain {
			if seen[c.SubjectAgent] {
				return reason.New(reason.DelegationLoop, fmt.Sprintf("agent %s appears twice in the capability chain", c.SubjectAgent))
			}
			seen[c.SubjectAgent] = true
		}
	}
	if env.Chain != nil {
		seen := map[string]bool{}
		for _, a := range env.Chain.Agents {
			if seen[a] {
				return reason.New(reason.DelegationLoop, fmt.Sprintf("agent %s appears twice in the delegation chain", a))
			}
			seen[a] = true
		}
	}
	return nil
}

// NeedsApproval reports whether p must carry human approvals under this verifier's policy:
// it asks for review itself, the receiver's policy marks one of its actions for review, or
// it is an AI-generated write (with WithAIWriteApproval).
func (v *Verifier) NeedsApproval(p *packet.Packet) bool {
	if p.Constraints != nil && p.Constraints.RequiresHumanReview {
		return true
	}
	if v.actions != nil {
		for _, a := range p.Permissions.AllowedActions {
			if v.actions.ActionRule(a).Review {
				return true
			}
		}
	}
	if v.aiWrite && p.AIProvenance != nil {
		lvl, ok, err := v.time.EffectiveRisk(p)
		return err != nil || ok && lvl.Name != packet.RiskRead // unsure is a write: fail safe
	}
	return false
}

// checkApprovals enforces the human gate. Every attached approval must be valid for this
// packet (approval_invalid otherwise): signed by a registered, unrevoked (registry and
// revocation store) approver's key valid now, by neither the packet's sender nor its
// receiver. A valid deny vetoes and is remembered (checkDenied). At least threshold
// approvals must count, and they count once per approver and once per key: one key
// registered under two approver ids is one approver.
func (v *Verifier) checkApprovals(ctx context.Context, env *packet.Envelope, digest [32]byte, now time.Time, dryRun bool, replayKey []byte, d *Decision) error {
	p := env.Packet
	ids := map[string]bool{}
	keys := map[string]bool{}
	counted := 0
	for i := range env.Approvals {
		a, err := approval.FromValue(&env.Approvals[i])
		if err != nil {
			return err
		}
		if err := approval.Verify(a, digest, v.reg, now, v.time.Skew); err != nil {
			return err
		}
		invalid := func(why string) error {
			return reason.New(reason.ApprovalInvalid, "approval "+a.ApprovalID+": "+why)
		}
		if a.Approver == p.FromAgent || a.Approver == p.ToAgent || a.PublicKey == p.PublicKey {
			return invalid("the packet's sender or receiver cannot approve it")
		}
		_, revoked, err := v.revoked.Revoked(ctx, revocation.KindAgent, a.Approver)
		if err != nil {
			return reason.Wrap(reason.StoreUnavailable, "revocation store unavailable", err)
		}
		if revoked {
			return invalid("approver " + a.Approver + " is revoked")
		}
		if b, err := v.reg.Resolve(a.Approver, a.PublicKey, now); err == nil && b.OverlapUsed {
			d.flag(FlagOverlapUsed)
		}
		if a.Decision == approval.Deny {
			if !dryRun {
				e := revocation.Entry{Kind: revocation.KindDenied, ID: hex.EncodeToString(replayKey), At: now.UTC()}
				if err := v.denies.Revoke(ctx, e); err != nil {
					return reason.Wrap(reason.StoreUnavailable, "recording the deny", err)
				}
			}
			d.deny = denyAttached
			return reason.New(reason.PolicyDenied, "denied by approver "+a.Approver)
		}
		if !ids[a.Approver] && !keys[a.PublicKey] {
			counted++
		}
		ids[a.Approver], keys[a.PublicKey] = true, true
	}
	if !v.NeedsApproval(p) || counted >= v.threshold {
		return nil
	}
	if v.unsignedOK {
		if f, ok := p.Context.Get("human_approval"); ok && truthy(f) {
			return nil
		}
	}
	return reason.New(reason.HumanReviewRequired, fmt.Sprintf("needs %d signed approval(s) from distinct approvers, has %d", v.threshold, counted))
}

// checkDenied rejects a packet a human has denied, even when it is resent without the deny.
func (v *Verifier) checkDenied(ctx context.Context, replayKey []byte, d *Decision) error {
	e, denied, err := v.revoked.Revoked(ctx, revocation.KindDenied, hex.EncodeToString(replayKey))
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "revocation store unavailable", err)
	}
	if denied {
		d.deny = denyRecorded
		return reason.New(reason.PolicyDenied, "a human approver denied this packet at "+e.At.UTC().Format(time.RFC3339))
	}
	return nil
}

// truthy is Python truthiness of a JSON value, for the insecure compatibility switch.
func truthy(v *canonical.Value) bool {
	switch v.Kind {
	case canonical.Bool:
		return v.Bool
	case canonical.Int:
		return v.Str != "0"
	case canonical.Float:
		return v.Float != 0
	case canonical.String:
		return v.Str != ""
	case canonical.Array:
		return len(v.Arr) > 0
	case canonical.Object:
		return len(v.Obj) > 0
	}
	return false
}

// replayDomain separates packet nonces from attestation nonces (attest.ReplayKey) when both
// share one store, as they do in the CLI's state directory.
const replayDomain = "trusthandoff/packet-nonce/v1\x00"

// ReplayKey is the replay store key of a packet:
// sha256(domain || sha256(sender's raw public key) || nonce).
func ReplayKey(pub ed25519.PublicKey, nonce string) []byte {
	fp := identity.Fingerprint(pub)
	h := sha256.New()
	h.Write([]byte(replayDomain))
	h.Write(fp[:])
	h.Write([]byte(nonce))
	return h.Sum(nil)
}

// NonceRetention is how long after expires_at a nonce stays recorded: the largest grace
// plus the largest skew any verifier may use. Verifiers with other settings share stores,
// so retention must not depend on this verifier's own grace and skew: a packet accepted by
// one verifier is never accepted again by another with a larger grace.
const NonceRetention = packet.MaxGrace + packet.MaxSkew

func (v *Verifier) recordNonce(ctx context.Context, p *packet.Packet, key []byte) error {
	fresh, err := v.replay.Record(ctx, key, p.ExpiresAt.Time().Add(NonceRetention))
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "replay store unavailable", err)
	}
	if !fresh {
		return reason.New(reason.ReplayDetected, "nonce already used by this sender")
	}
	return nil
}

// peekNonce is the dry run's replay step: it reports a used nonce and records nothing.
func (v *Verifier) peekNonce(ctx context.Context, key []byte) error {
	pk, ok := v.replay.(replay.Peeker)
	if !ok {
		return reason.New(reason.StoreUnavailable, "this replay store cannot be read without recording (no dry run)")
	}
	seen, err := pk.Seen(ctx, key)
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "replay store unavailable", err)
	}
	if seen {
		return reason.New(reason.ReplayDetected, "nonce already used by this sender")
	}
	return nil
}

func (v *Verifier) decide(d *Decision, err error) {
	if err == nil {
		d.Decision, d.Reason, d.Detail = Accept, reason.OK, "handoff verified"
		return
	}
	d.Decision, d.Err = Reject, err
	d.Reason = reason.Of(err, reason.MalformedEnvelope)
	d.Detail = err.Error()
}

// emit records the decision's audit events and returns the first failure.
//
// Every decision yields packet_accepted or packet_rejected (the reference's types), then,
// as they apply: replay_detected, capability_stale (a link expired or revoked),
// wrong_recipient, approval_denied, and for an accepted handoff one event per flag
// (token_overlap_used, ai_generated_payload). All of a decision's events share one payload
// (see eventPayload), so a reader of any one of them has the whole story.
func (v *Verifier) emit(ctx context.Context, d *Decision, now time.Time) error {
	if v.sink == audit.Discard() {
		return nil
	}
	typ := audit.PacketAccepted
	if !d.Accepted() {
		typ = audit.PacketRejected
	}
	payload := v.eventPayload(d)
	events := []string{typ}
	switch d.Reason {
	case reason.ReplayDetected:
		events = append(events, audit.ReplayDetected)
	case reason.CapabilityExpired, reason.CapabilityRevoked:
		events = append(events, audit.CapabilityStale)
	case reason.WrongRecipient:
		events = append(events, audit.WrongRecipient)
	}
	if d.deny != noDeny {
		events = append(events, audit.ApprovalDenied)
	}
	if d.Accepted() {
		events = append(events, d.Flags...)
	}
	for _, t := range events {
		ev := audit.Event{
			EventID: packet.NewID(), EventType: t, Timestamp: now.UTC(), ProducerID: v.producer,
			CorrelationID: d.PacketID, IdempotencyKey: idempotencyKey(t, d), Payload: payload,
		}
		if err := v.sink.Emit(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// maxClaimedLinks bounds the capability tokens a rejected envelope's event decodes to name
// them: an envelope may carry any number, and naming them must stay cheap.
const maxClaimedLinks = 8

// maxEventApprovals bounds the approvals an event names.
const maxEventApprovals = 16

// eventPayload is what a decision's audit events carry: enough for forensics without the
// envelope. The keys (spec/sentinel.md lists them) are:
//
//   - packet_id, decision, reason, detail: always;
//   - from_agent, to_agent, nonce, task_id, actions, issued_at, expires_at, chain_depth
//     (the deepest delegation the envelope claims: capability links, signed
//     provenance.delegation_depth, unsigned chain hops), requires_review; max_tool_calls
//     and risk_level when set: whenever the envelope parsed, whether or not its claims
//     verified;
//   - capability_ids: the verified chain, root first; capability_ids_claimed: the ids of
//     the links a rejected envelope carried, decoded but not verified;
//   - signing_rule and packet_digest (lowercase hex, what approvals name) once the
//     signature verified;
//   - approvals: [{approval_id, approver, decision}] as attached (verified only when the
//     decision is ACCEPT);
//   - denied: "attached" (a deny in the envelope) or "recorded" (a packet denied earlier,
//     resent) when a human's deny rejected it;
//   - recipient: the agent the verifier served, when it binds one;
//   - flags; dry_run: true for a dry run (which consumed no nonce).
func (v *Verifier) eventPayload(d *Decision) map[string]any {
	payload := make(map[string]any, 20) // room for every key below, so the map never grows
	payload["packet_id"], payload["decision"], payload["reason"], payload["detail"] = d.PacketID, d.Decision, string(d.Reason), d.Detail
	if len(d.Flags) > 0 {
		payload["flags"] = slices.Clone(d.Flags)
	}
	if d.DryRun {
		payload["dry_run"] = true
	}
	p := d.packet()
	if p == nil {
		return payload
	}
	env := d.Envelope
	payload["from_agent"], payload["to_agent"], payload["nonce"] = p.FromAgent, p.ToAgent, p.Nonce
	payload["task_id"] = p.TaskID
	payload["actions"] = p.Permissions.AllowedActions
	if p.Permissions.MaxToolCalls != nil {
		payload["max_tool_calls"] = *p.Permissions.MaxToolCalls
	}
	if p.RiskLevel != nil {
		payload["risk_level"] = *p.RiskLevel
	}
	if !p.IssuedAt.IsZero() {
		payload["issued_at"] = p.IssuedAt.Time().Format(time.RFC3339Nano)
	}
	if !p.ExpiresAt.IsZero() {
		payload["expires_at"] = p.ExpiresAt.Time().Format(time.RFC3339Nano)
	}
	payload["requires_review"] = p.Constraints != nil && p.Constraints.RequiresHumanReview
	payload["chain_depth"] = claimedDepth(env)
	if len(d.Chain) > 0 {
		ids := make([]string, len(d.Chain))
		for i, c := range d.Chain {
			ids[i] = c.CapabilityID
		}
		payload["capability_ids"] = ids
	} else if ids := v.claimedCapabilities(env); len(ids) > 0 {
		payload["capability_ids_claimed"] = ids
	}
	if d.Rule != "" { // the signature verified, so d.Digest is set (a sink is)
		payload["signing_rule"] = string(d.Rule)
		payload["packet_digest"] = hex.EncodeToString(d.Digest[:])
	}
	if len(env.Approvals) > 0 {
		var as []any
		for i := range env.Approvals[:min(len(env.Approvals), maxEventApprovals)] {
			a, err := approval.FromValue(&env.Approvals[i])
			if err != nil {
				as = append(as, map[string]any{"malformed": true})
				continue
			}
			as = append(as, map[string]any{"approval_id": a.ApprovalID, "approver": a.Approver, "decision": a.Decision})
		}
		payload["approvals"] = as
	}
	switch d.deny {
	case denyAttached:
		payload["denied"] = "attached"
	case denyRecorded:
		payload["denied"] = "recorded"
	}
	if d.recipient != "" {
		payload["recipient"] = d.recipient
	}
	return payload
}

// claimedDepth is the deepest delegation an envelope claims, signed or not: the forensic
// view (checkDepth decides on signed data).
func claimedDepth(env *packet.Envelope) int64 {
	var depth int64
	switch {
	case len(env.Capabilities) > 0:
		depth = int64(len(env.Capabilities))
	case env.Packet.CapabilityToken != nil:
		depth = 1
	}
	if pr := env.Packet.Provenance; pr != nil {
		depth = max(depth, pr.DelegationDepth)
	}
	if env.Chain != nil {
		depth = max(depth, int64(len(env.Chain.Hops))-1)
	}
	return depth
}

// claimedCapabilities names the capability links an envelope carries, decoding at most
// maxClaimedLinks of them without verifying them.
func (v *Verifier) claimedCapabilities(env *packet.Envelope) []string {
	tokens := env.Capabilities
	if len(tokens) == 0 && env.Packet.CapabilityToken != nil {
		tokens = []string{*env.Packet.CapabilityToken}
	}
	var ids []string
	for _, tok := range tokens[:min(len(tokens), maxClaimedLinks)] {
		if c, err := capability.DecodeToken(tok, v.limits); err == nil {
			ids = append(ids, c.CapabilityID)
		}
	}
	return ids
}

func (d *Decision) packet() *packet.Packet {
	if d.Envelope == nil {
		return nil
	}
	return d.Envelope.Packet
}

// idempotencyKey identifies one event of one delivery attempt's outcome: a replayed
// delivery repeats packet id and nonce but not the decision.
func idempotencyKey(eventType string, d *Decision) string {
	nonce := ""
	if p := d.packet(); p != nil {
		nonce = p.Nonce
	}
	return eventType + ":" + d.PacketID + ":" + nonce + ":" + string(d.Reason)
}
