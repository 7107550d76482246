package capability

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Registry tells VerifyChain which keys speak for which agent. registry.Registry
// implements it.
type Registry interface {
	// KeyValid reports whether pub is a registered key of agentID, valid at at (and the
	// agent not revoked then).
	KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool
}

// VerifierRegistry is optionally implemented by a Registry that holds a Verifier for each
// registered key (registry.Registry does). VerifyChain then checks a link's key with
// ValidKeyVerifier instead of KeyValid, and verifies the link's signature with the
// returned Verifier (nil: crypto/ed25519). It must answer exactly as KeyValid does, and
// the Verifier must make exactly crypto/ed25519's decisions for pub.
type VerifierRegistry interface {
	ValidKeyVerifier(agentID string, pub ed25519.PublicKey, at time.Time) (identity.Verifier, bool)
}

// DefaultSkew is how far in the future a capability's issued_at may lie (clock skew).
const DefaultSkew = 30 * time.Second

// VerifyOption configures [VerifyChain].
type VerifyOption func(verifyConfig) verifyConfig

type verifyConfig struct {
	skew time.Duration
}

// WithSkew sets the tolerated clock skew for issued_at (default [DefaultSkew]; negative
// means zero). Bounding it (the pipeline caps the skew at 300 s) is the caller's policy.
func WithSkew(d time.Duration) VerifyOption {
	return func(c verifyConfig) verifyConfig { c.skew = max(d, 0); return c }
}

// VerifySignature reports whether c's signature verifies under c's own public_key. It does
// not say whether that key belongs to c's issuer: [VerifyChain] checks that too.
func (c *Capability) VerifySignature() bool {
	pub, sig, err := c.keys()
	if err != nil || c.SignatureAlgo != Algorithm {
		return false
	}
	var buf [1024]byte
	return ed25519.Verify(pub, c.appendJSON(buf[:0], true), sig[:])
}

// VerifyChain verifies a capability chain, root first, as of now. It returns nil or a
// *reason.Error:
//
//   - capability_invalid: an empty chain or nil link; a root that names a parent; a link
//     whose parent_capability_id is not the previous link's capability_id, or whose
//     issuer_agent is not the previous link's subject_agent; a repeated capability_id; a
//     malformed time window (expires_at ≤ issued_at); a signature that does not verify
//     under the link's public_key, or a public_key that reg does not hold as a key of the
//     link's issuer_agent valid at now.
//   - capability_escalation: a link wider than its parent (see below).
//   - capability_expired: a link with expires_at ≤ now, or issued_at after now + skew.
//
// A link attenuates its parent when it does not outlive it (expires_at ≤ the parent's),
// its allowed_actions are a subset of the parent's, its max_tool_calls is set and no larger
// when the parent's is set, and its constraints keep every constraint in force at least
// as strict: max_runtime_seconds set and no larger, the same data_boundary,
// requires_human_review not switched off. A link whose constraints are null inherits the
// constraints in force (see [EffectiveConstraints]) rather than dropping them: the
// reference's own valid depth-3 chain has a null-constraint link below a constrained one.
// max_tool_calls gets no such reading: null there means unlimited, an escalation under
// a limit.
//
// The checks run cheapest first, but a link's claims are only judged once its signature
// is known good, so an escalation is only ever reported for authentic data.
// Revocation is not checked: check every id of [IDs] against the revocation store.
func VerifyChain(chain []*Capability, reg Registry, now time.Time, opts ...VerifyOption) error {
	cfg := verifyConfig{skew: DefaultSkew}
	for _, o := range opts {
		cfg = o(cfg) // by value, so cfg stays on the stack
	}
	if len(chain) == 0 {
		return reason.New(reason.CapabilityInvalid, "capability chain is empty")
	}
	if reg == nil {
		return reason.New(reason.CapabilityInvalid, "no registry to verify the capability chain against")
	}
	// 1. Structure: links connect, windows are well-formed.
	for i, c := range chain {
		if c == nil {
			return reason.New(reason.CapabilityInvalid, fmt.Sprintf("capability %d is missing", i))
		}
		if c.SignatureAlgo != Algorithm {
			return linkError(reason.CapabilityInvalid, i, c, "signature_algo %q is not supported", c.SignatureAlgo)
		}
		if c.ExpiresAt.Micros <= c.IssuedAt.Micros {
			return linkError(reason.CapabilityInvalid, i, c, "malformed time window: expires_at is not after issued_at")
		}
		if i == 0 {
			if c.ParentCapabilityID != nil {
				return linkError(reason.CapabilityInvalid, i, c, "the root names a parent (%q) the chain does not carry", *c.ParentCapabilityID)
			}
		} else {
			p := chain[i-1]
			if c.ParentCapabilityID == nil || *c.ParentCapabilityID != p.CapabilityID {
				return linkError(reason.CapabilityInvalid, i, c, "parent_capability_id does not name the previous capability %q", p.CapabilityID)
			}
			if c.IssuerAgent != p.SubjectAgent {
				return linkError(reason.CapabilityInvalid, i, c, "issuer %s is not the parent's subject %s", c.IssuerAgent, p.SubjectAgent)
			}
		}
		if dup := repeatedID(chain[:i], c.CapabilityID); dup >= 0 {
			return linkError(reason.CapabilityInvalid, i, c, "capability_id repeats capability %d", dup)
		}
	}
	// 2. Authenticity: each link is signed by a key registered for its issuer.
	var buf [1024]byte // the signing bytes of each link in turn; stays on the stack
	vreg, _ := reg.(VerifierRegistry)
	for i, c := range chain {
		pub, sig, err := c.keys()
		if err != nil {
			return &reason.Error{Code: reason.CapabilityInvalid, Msg: linkMsg(i, c, "undecodable key or signature"), Err: err}
		}
		var ver identity.Verifier
		valid := false
		if vreg != nil {
			ver, valid = vreg.ValidKeyVerifier(c.IssuerAgent, pub, now)
		} else {
			valid = reg.KeyValid(c.IssuerAgent, pub, now)
		}
		if !valid {
			return linkError(reason.CapabilityInvalid, i, c, "public_key is not a registered key of issuer %s valid at %s", c.IssuerAgent, now.UTC().Format(time.RFC3339))
		}
		msg := c.appendJSON(buf[:0], true)
		if ok := ver != nil && ver.Verify(msg, sig[:]) || ver == nil && ed25519.Verify(pub, msg, sig[:]); !ok {
			return linkError(reason.CapabilityInvalid, i, c, "signature does not verify")
		}
	}
	// 3. Attenuation.
	inForce := chain[0].Constraints
	for i := 1; i < len(chain); i++ {
		if err := attenuates(chain[i-1], chain[i], inForce); err != nil {
			e := err.(*reason.Error)
			e.Msg = linkMsg(i, chain[i], e.Msg)
			return e
		}
		if chain[i].Constraints != nil {
			inForce = chain[i].Constraints
		}
	}
	// 4. Liveness at now.
	nowUs := now.UnixMicro()
	latest := now.Add(cfg.skew).UnixMicro()
	for i, c := range chain {
		if c.ExpiresAt.Micros <= nowUs {
			return linkError(reason.CapabilityExpired, i, c, "expired at %s", c.ExpiresAt.Time().Format(time.RFC3339Nano))
		}
		if c.IssuedAt.Micros > latest {
			return linkError(reason.CapabilityExpired, i, c, "not valid yet: issued at %s, beyond the clock skew", c.IssuedAt.Time().Format(time.RFC3339Nano))
		}
	}
	return nil
}

func linkMsg(i int, c *Capability, msg string) string {
	return fmt.Sprintf("capability %d (%q): %s", i, c.CapabilityID, msg)
}

func linkError(code reason.Code, i int, c *Capability, format string, args ...any) error {
	return reason.New(code, linkMsg(i, c, fmt.Sprintf(format, args...)))
}

// repeatedID returns the index in prev of id, or -1.
func repeatedID(prev []*Capability, id string) int {
	for j, p := range prev {
		if p.CapabilityID == id {
			return j
		}
	}
	return -1
}

// attenuates returns a capability_escalation error when child is wider than parent, whose
// constraints in force (its own, or inherited when null) are inForce.
func attenuates(parent, child *Capability, inForce *Constraints) error {
	esc := func(format string, args ...any) error {
		return reason.New(reason.CapabilityEscalation, fmt.Sprintf(format, args...))
	}
	if child.ExpiresAt.Micros > parent.ExpiresAt.Micros {
		return esc("outlives its parent (expires_at after the parent's)")
	}
	if a, ok := parent.Permissions.Allows(child.Permissions.AllowedActions); !ok {
		return esc("allowed action %q is not allowed by its parent", a)
	}
	if pm := parent.Permissions.MaxToolCalls; pm != nil {
		cm := child.Permissions.MaxToolCalls
		if cm == nil {
			return esc("max_tool_calls is unlimited under a parent limit of %d", *pm)
		}
		if *cm > *pm {
			return esc("max_tool_calls %d exceeds its parent's %d", *cm, *pm)
		}
	}
	if child.Constraints != nil {
		if msg := constraintsWithin(child.Constraints, inForce); msg != "" {
			return esc("%s", msg)
		}
	}
	return nil
}

// constraintsWithin describes how c is looser than limit, or returns "". A nil c has every
// constraint unset.
func constraintsWithin(c, limit *Constraints) string {
	if limit == nil {
		return ""
	}
	var none Constraints
	if c == nil {
		c = &none
	}
	if lm := limit.MaxRuntimeSeconds; lm != nil {
		if c.MaxRuntimeSeconds == nil {
			return fmt.Sprintf("max_runtime_seconds is unlimited under a limit of %d", *lm)
		}
		if *c.MaxRuntimeSeconds > *lm {
			return fmt.Sprintf("max_runtime_seconds %d exceeds the limit %d", *c.MaxRuntimeSeconds, *lm)
		}
	}
	if lb := limit.DataBoundary; lb != nil && (c.DataBoundary == nil || *c.DataBoundary != *lb) {
		return fmt.Sprintf("data_boundary must stay %q", *lb)
	}
	if limit.RequiresHumanReview && !c.RequiresHumanReview {
		return "requires_human_review is switched off"
	}
	return ""
}

// Authorize checks that a packet's permissions lie inside the leaf capability's: every
// action allowed by the leaf, and maxToolCalls no larger than the leaf's limit (and not
// nil, i.e. unlimited, under a limit). The error is a *reason.Error with code
// action_not_authorized.
func Authorize(leaf *Capability, actions []string, maxToolCalls *int64) error {
	deny := func(format string, args ...any) error {
		return reason.New(reason.ActionNotAuthorized, fmt.Sprintf(format, args...))
	}
	if leaf == nil {
		return deny("no capability")
	}
	if a, ok := leaf.Permissions.Allows(actions); !ok {
		return deny("action %q is not allowed by capability %q", a, leaf.CapabilityID)
	}
	if lm := leaf.Permissions.MaxToolCalls; lm != nil {
		if maxToolCalls == nil {
			return deny("max_tool_calls is unlimited under capability %q's limit of %d", leaf.CapabilityID, *lm)
		}
		if *maxToolCalls > *lm {
			return deny("max_tool_calls %d exceeds capability %q's limit of %d", *maxToolCalls, leaf.CapabilityID, *lm)
		}
	}
	return nil
}

// EffectiveConstraints returns the constraints in force at the leaf of a verified chain:
// the last link's that are not null (a null link inherits), or nil when no link sets any.
// Attenuation makes each set of constraints at least as strict as the one before it.
func EffectiveConstraints(chain []*Capability) *Constraints {
	for i := len(chain) - 1; i >= 0; i-- {
		if chain[i] != nil && chain[i].Constraints != nil {
			return chain[i].Constraints
		}
	}
	return nil
}

// AuthorizeConstraints checks that a packet's constraints (nil: none) keep every constraint
// in force at the leaf of a verified chain ([EffectiveConstraints]) at least as strict, by
// the rule VerifyChain applies between links. The protocol does not require it, but without
// it a delegate drops the capability's requires_human_review or data_boundary by not
// repeating them in its packet. The error is a *reason.Error with code
// action_not_authorized.
func AuthorizeConstraints(chain []*Capability, c *Constraints) error {
	if len(chain) == 0 || chain[len(chain)-1] == nil {
		return reason.New(reason.ActionNotAuthorized, "no capability")
	}
	if msg := constraintsWithin(c, EffectiveConstraints(chain)); msg != "" {
		return reason.New(reason.ActionNotAuthorized, fmt.Sprintf("capability %q: %s", chain[len(chain)-1].CapabilityID, msg))
	}
	return nil
}

// IDs returns the capability ids of chain, root first. The caller checks each against its
// revocation store: revoking a capability revokes every capability below it in any chain,
// since every such chain carries it.
func IDs(chain []*Capability) []string {
	ids := make([]string, 0, len(chain))
	for _, c := range chain {
		if c != nil {
			ids = append(ids, c.CapabilityID)
		}
	}
	return ids
}
