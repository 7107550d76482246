// Package verify is the verification gate: the whole pipeline of DESIGN §5, in order, in
// one place (Verifier.verify), returning a Decision with a stable reason code.
//
// The order is the point. A nonce is consumed only by a packet that passed every other
// check (the reference burns it first, so a forged copy kills the real packet); the replay
// store never evicts a live nonce; and a store failure rejects with store_unavailable
// (fail closed).
package verify

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
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

	// The verified handoff, set when the envelope parsed (and the chain when it verified).
	Envelope *packet.Envelope         `json:"-"`
	Chain    []*capability.Capability `json:"-"`
	Digest   [32]byte                 `json:"-"` // sha256 of the packet's signed bytes
	Err      error                    `json:"-"` // the failure, for errors.Is/As
	AuditErr error                    `json:"-"` // the audit sink's failure, if any
}

// Accepted reports whether the decision is ACCEPT.
func (d *Decision) Accepted() bool { return d.Decision == Accept }

// Registry is what the pipeline needs from the agent registry (*registry.Registry).
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
}

// Option configures a Verifier.
type Option func(*Verifier) error

// New returns a Verifier over a registry and a replay store. Both are required: a gate
// without replay protection is not a gate.
func New(reg Registry, replay ReplayStore, opts ...Option) (*Verifier, error) {
	if reg == nil || replay == nil {
		return nil, errors.New("verify: a registry and a replay store are required")
	}
	v := &Verifier{reg: reg, replay: replay, sink: audit.Discard, maxDepth: 5, threshold: 1, now: time.Now, producer: "trusthandoff-go"}
	for _, o := range opts {
		if err := o(v); err != nil {
			return nil, err
		}
	}
	if err := v.time.Check(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return v, nil
}

// WithRevocations checks capability and agent ids against a revocation store.
func WithRevocations(s RevocationStore) Option {
	return func(v *Verifier) error { v.revoked = s; return nil }
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

// WithTimePolicy sets skew, grace, TTL levels, the action map and strict mode.
func WithTimePolicy(p packet.TimePolicy) Option {
	return func(v *Verifier) error { v.time = p; return nil }
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

// WithClock sets the clock (tests, and the CLI's --at).
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error { v.now = now; return nil }
}

// Verify runs the pipeline on a wire envelope at the verifier's current time.
func (v *Verifier) Verify(ctx context.Context, data []byte) *Decision {
	return v.VerifyAt(ctx, data, v.now())
}

// VerifyAt runs the pipeline as of instant now.
func (v *Verifier) VerifyAt(ctx context.Context, data []byte, now time.Time) *Decision {
	d := &Decision{}
	err := v.verify(ctx, data, now, d)
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

// verify is the pipeline, top to bottom (DESIGN §5).
func (v *Verifier) verify(ctx context.Context, data []byte, now time.Time, d *Decision) error {
	// 1. size limit, strict parse, structure
	env, err := packet.ParseEnvelope(data, v.limits)
	if err != nil {
		return err
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
		d.Flags = append(d.Flags, FlagOverlapUsed)
	}
	// 3. signature, under either packet rule
	rule, err := p.VerifySignature(bind.PublicKey)
	if err != nil {
		return err
	}
	d.Rule = rule
	// The digest names the packet in approvals; only handoffs that involve approvals pay for it.
	if len(env.Approvals) > 0 || v.NeedsApproval(p) {
		if d.Digest, err = approval.Digest(p, rule); err != nil {
			return reason.Wrap(reason.MalformedEnvelope, "packet digest", err)
		}
	}
	// 4. time window and TTL policy
	if err := packet.ValidateTime(p, now, &v.time); err != nil {
		return err
	}
	// 5. capability chain
	if d.Chain, err = v.checkCapabilities(ctx, env, now); err != nil {
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
		d.Flags = append(d.Flags, FlagAIGenerated)
	}
	if err := v.checkApprovals(env, d.Digest, now); err != nil {
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
	// 8. replay: only now may the nonce be consumed
	return v.recordNonce(ctx, p, bind.PublicKey)
}

func checkStructure(p *packet.Packet) error {
	switch {
	case p.SignatureAlgo != "Ed25519":
		return reason.New(reason.UnsupportedAlgorithm, fmt.Sprintf("signature_algo %q is not supported (only Ed25519)", p.SignatureAlgo))
	case p.PacketID == "" || p.Nonce == "" || p.FromAgent == "" || p.ToAgent == "":
		return reason.New(reason.MalformedEnvelope, "packet_id, nonce, from_agent and to_agent must be non-empty")
	}
	return nil
}

func (v *Verifier) checkAgentRevoked(ctx context.Context, agentID string) error {
	if v.revoked == nil {
		return nil
	}
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
func (v *Verifier) checkCapabilities(ctx context.Context, env *packet.Envelope, now time.Time) ([]*capability.Capability, error) {
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
		chain[i] = c
	}
	if err := capability.VerifyChain(chain, v.reg, now, capability.WithSkew(skewOf(&v.time))); err != nil {
		return nil, err
	}
	leaf := chain[len(chain)-1]
	if leaf.IssuerAgent != p.FromAgent || leaf.SubjectAgent != p.ToAgent {
		return nil, reason.New(reason.CapabilityInvalid, "the capability is not a grant from the sender to the receiver")
	}
	if err := capability.Authorize(leaf, p.Permissions.AllowedActions, p.Permissions.MaxToolCalls); err != nil {
		return nil, err
	}
	// The packet may not drop a constraint its capability imposes (human review, boundary).
	var pc *capability.Constraints
	if p.Constraints != nil {
		pc = (*capability.Constraints)(p.Constraints)
	}
	if err := capability.AuthorizeConstraints(chain, pc); err != nil {
		return nil, err
	}
	if v.revoked != nil {
		// Revoking a link revokes everything below it; revoking an agent revokes what it issued.
		for _, c := range chain {
			if err := v.checkRevoked(ctx, revocation.KindCapability, c.CapabilityID, "capability "+c.CapabilityID); err != nil {
				return nil, err
			}
			if err := v.checkRevoked(ctx, revocation.KindAgent, c.IssuerAgent, "capability "+c.CapabilityID+" was issued by revoked agent "+c.IssuerAgent); err != nil {
				return nil, err
			}
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

// NeedsApproval reports whether p must carry human approvals under this verifier's policy.
func (v *Verifier) NeedsApproval(p *packet.Packet) bool {
	if p.Constraints != nil && p.Constraints.RequiresHumanReview {
		return true
	}
	if v.aiWrite && p.AIProvenance != nil {
		lvl, ok, err := v.time.EffectiveRisk(p)
		return err == nil && ok && lvl.Name == packet.RiskWrite
	}
	return false
}

// checkApprovals enforces the human gate: every attached approval must be valid for this
// packet; a valid deny vetoes; at least threshold distinct approvers must approve.
func (v *Verifier) checkApprovals(env *packet.Envelope, digest [32]byte, now time.Time) error {
	approvers := map[string]bool{}
	for i := range env.Approvals {
		a, err := approval.FromValue(&env.Approvals[i])
		if err != nil {
			return err
		}
		if err := approval.Verify(a, digest, v.reg, now, v.time.Skew); err != nil {
			return err
		}
		if a.Decision == approval.Deny {
			return reason.New(reason.PolicyDenied, "denied by approver "+a.Approver)
		}
		approvers[a.Approver] = true
	}
	if !v.NeedsApproval(env.Packet) || len(approvers) >= v.threshold {
		return nil
	}
	if v.unsignedOK {
		if f, ok := env.Packet.Context.Get("human_approval"); ok && truthy(f) {
			return nil
		}
	}
	return reason.New(reason.HumanReviewRequired, fmt.Sprintf("needs %d signed approval(s), has %d", v.threshold, len(approvers)))
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

func (v *Verifier) recordNonce(ctx context.Context, p *packet.Packet, pub ed25519.PublicKey) error {
	until := p.ExpiresAt.Time().Add(v.time.Grace + skewOf(&v.time))
	fresh, err := v.replay.Record(ctx, ReplayKey(pub, p.Nonce), until)
	if err != nil {
		return reason.Wrap(reason.StoreUnavailable, "replay store unavailable", err)
	}
	if !fresh {
		return reason.New(reason.ReplayDetected, "nonce already used by this sender")
	}
	return nil
}

func skewOf(p *packet.TimePolicy) time.Duration {
	if p.Skew == 0 {
		return packet.DefaultSkew
	}
	return p.Skew
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
func (v *Verifier) emit(ctx context.Context, d *Decision, now time.Time) error {
	if v.sink == audit.Discard {
		return nil
	}
	typ := audit.PacketAccepted
	if !d.Accepted() {
		typ = audit.PacketRejected
	}
	payload := map[string]any{"packet_id": d.PacketID, "decision": d.Decision, "reason": string(d.Reason), "detail": d.Detail}
	if p := d.packet(); p != nil {
		payload["from_agent"], payload["to_agent"], payload["nonce"] = p.FromAgent, p.ToAgent, p.Nonce
		payload["actions"] = p.Permissions.AllowedActions
		if p.CapabilityToken != nil && len(d.Chain) > 0 {
			ids := make([]string, len(d.Chain))
			for i, c := range d.Chain {
				ids[i] = c.CapabilityID
			}
			payload["capability_ids"] = ids
		}
	}
	events := []string{typ}
	if d.Reason == reason.ReplayDetected {
		events = append(events, audit.ReplayDetected)
	}
	if d.Reason == reason.CapabilityExpired || d.Reason == reason.CapabilityRevoked {
		events = append(events, audit.CapabilityStale)
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
