package capability

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Option configures [Issue], [Derive] and [Delegate]. WithParent, WithMaxToolCalls,
// WithConstraints, WithTTL and WithIssuedAt configure Delegate only: Issue and Derive take
// those as arguments and refuse them as options.
type Option func(*issueConfig) error

type issueConfig struct {
	id     string
	issuer string

	// Delegate only.
	delegateOpt  string // name of the first Delegate-only option given
	parent       *Capability
	maxToolCalls *int64
	constraints  *Constraints
	ttl          time.Duration
	issuedAt     time.Time
}

// DefaultTTL is how long a capability from [Delegate] is valid unless [WithTTL] says
// otherwise (and its parent expires sooner).
const DefaultTTL = time.Hour

// WithID sets the capability id (default: a random UUID from [NewID]). Ids must be unique:
// revocation is by id.
func WithID(id string) Option {
	return func(c *issueConfig) error {
		if id == "" {
			return invalidf("empty capability id")
		}
		c.id = id
		return nil
	}
}

// WithIssuerAgent sets issuer_agent for a registry that names the signer with an id other
// than the one derived from its key (the default, identity.AgentIDOf): an agent whose key
// was rotated keeps its id and signs with the new key.
func WithIssuerAgent(agentID string) Option {
	return func(c *issueConfig) error {
		if err := packet.CheckAgentID(agentID); err != nil {
			return invalidf("issuer agent: %v", err)
		}
		c.issuer = agentID
		return nil
	}
}

// delegateOnly marks an option as one for Delegate.
func (c *issueConfig) delegateOnly(name string) {
	if c.delegateOpt == "" {
		c.delegateOpt = name
	}
}

// WithParent makes [Delegate] derive from parent, a capability whose subject is the
// signer: see Delegate for what the child inherits.
func WithParent(parent *Capability) Option {
	return func(c *issueConfig) error {
		if parent == nil {
			return invalidf("no parent to derive from")
		}
		c.delegateOnly("WithParent")
		c.parent = parent
		return nil
	}
}

// WithMaxToolCalls sets the delegated max_tool_calls for [Delegate] (n ≥ 0; default: no
// limit, or the parent's).
func WithMaxToolCalls(n int64) Option {
	return func(c *issueConfig) error {
		if n < 0 {
			return invalidf("max_tool_calls %d is negative", n)
		}
		c.delegateOnly("WithMaxToolCalls")
		c.maxToolCalls = &n
		return nil
	}
}

// WithConstraints sets the constraints for [Delegate] (default: none, or the parent's).
func WithConstraints(k Constraints) Option {
	return func(c *issueConfig) error {
		c.delegateOnly("WithConstraints")
		c.constraints = k.Clone()
		return nil
	}
}

// WithTTL sets how long a capability from [Delegate] is valid (default [DefaultTTL]); a
// derived one never outlives its parent.
func WithTTL(d time.Duration) Option {
	return func(c *issueConfig) error {
		if d <= 0 {
			return invalidf("validity %v is not positive", d)
		}
		c.delegateOnly("WithTTL")
		c.ttl = d
		return nil
	}
}

// WithIssuedAt sets issued_at for [Delegate] (default: now).
func WithIssuedAt(t time.Time) Option {
	return func(c *issueConfig) error {
		c.delegateOnly("WithIssuedAt")
		c.issuedAt = t
		return nil
	}
}

func invalidf(format string, args ...any) error {
	return reason.New(reason.CapabilityInvalid, "capability: "+fmt.Sprintf(format, args...))
}

// Delegate issues a capability with the defaults of `trusthandoff delegate`: signer grants
// subject the actions from now ([WithIssuedAt]) for [DefaultTTL] ([WithTTL]), with no tool
// call limit ([WithMaxToolCalls]) and no constraints ([WithConstraints]).
//
// With [WithParent] it derives from the parent instead, by [Derive]'s rules, and what is
// not given narrows by default rather than failing: the expiry is capped at the parent's,
// no actions means the parent's, and max_tool_calls and each constraint left unset (nil,
// or requires_human_review false) are the parent's. A parent that has already expired is
// refused.
//
// subject must look like an agent id (packet.CheckAgentID). Errors are *reason.Error
// values: capability_invalid, or capability_escalation for a child wider than its parent.
func Delegate(signer identity.Signer, subject string, actions []string, opts ...Option) (*Capability, error) {
	var cfg issueConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := packet.CheckAgentID(subject); err != nil {
		return nil, invalidf("subject: %v", err)
	}
	for _, a := range actions {
		if a == "" || strings.Contains(a, ",") {
			return nil, invalidf("action %q is empty or contains a comma", a)
		}
	}
	issued := cfg.issuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	issued = issued.UTC().Truncate(time.Microsecond)
	ttl := cfg.ttl
	if ttl == 0 {
		ttl = DefaultTTL
	}
	expires := issued.Add(ttl)
	perms := Permissions{AllowedActions: actions, MaxToolCalls: cfg.maxToolCalls}
	cons := cfg.constraints
	par := cfg.parent
	if par == nil {
		if len(actions) == 0 {
			return nil, invalidf("no actions to delegate")
		}
		return issue(signer, subject, perms, cons, issued, expires, &cfg)
	}
	pe := par.ExpiresAt.Time()
	if !pe.After(issued) {
		return nil, invalidf("the parent %q expired at %s", par.CapabilityID, pe.Format(time.RFC3339))
	}
	if expires.After(pe) {
		expires = pe // a child may not outlive its parent
	}
	if len(perms.AllowedActions) == 0 {
		perms.AllowedActions = par.Permissions.AllowedActions
	}
	if perms.MaxToolCalls == nil {
		perms.MaxToolCalls = par.Permissions.MaxToolCalls
	}
	if pc := par.Constraints; pc != nil {
		// Field by field: what the child leaves unset is the parent's.
		if cons == nil {
			cons = &Constraints{}
		}
		if cons.MaxRuntimeSeconds == nil {
			cons.MaxRuntimeSeconds = pc.MaxRuntimeSeconds
		}
		if cons.DataBoundary == nil {
			cons.DataBoundary = pc.DataBoundary
		}
		cons.RequiresHumanReview = cons.RequiresHumanReview || pc.RequiresHumanReview
	}
	return derive(par, signer, subject, perms, cons, issued, expires, &cfg)
}

// NewID returns a random version-4 UUID, the form of the reference's capability ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("capability: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// Issue creates a root capability: signer grants subject perms under constraints (nil for
// none) from issuedAt until expiresAt. issuer_agent is the signer's agent id and
// public_key its SPKI PEM. Times are recorded in UTC with microsecond precision.
func Issue(signer identity.Signer, subject string, perms Permissions, constraints *Constraints, issuedAt, expiresAt time.Time, opts ...Option) (*Capability, error) {
	cfg, err := options(opts)
	if err != nil {
		return nil, err
	}
	return issue(signer, subject, perms, constraints, issuedAt, expiresAt, cfg)
}

// options applies the options of Issue and Derive.
func options(opts []Option) (*issueConfig, error) {
	var cfg issueConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.delegateOpt != "" {
		return nil, invalidf("%s is an option of Delegate; Issue and Derive take it as an argument", cfg.delegateOpt)
	}
	return &cfg, nil
}

func issue(signer identity.Signer, subject string, perms Permissions, constraints *Constraints, issuedAt, expiresAt time.Time, cfg *issueConfig) (*Capability, error) {
	c, err := build(signer, subject, perms, constraints, issuedAt, expiresAt, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.sign(signer); err != nil {
		return nil, err
	}
	return c, nil
}

// Derive creates a child of parent: the signer, who must be parent's subject, grants
// subject a part of parent's authority. The child is signed with the signer's own key and
// carries that key (the reference's derive_capability_token copies the parent's key, so its
// children never verify). Derive refuses, with a *reason.Error of code
// capability_escalation, to build a child wider than parent (see [VerifyChain]). Pass nil
// constraints to inherit the parent's. Derive sees only the parent: when the parent's
// constraints are null, constraints inherited from further up are checked by VerifyChain.
func Derive(parent *Capability, signer identity.Signer, subject string, perms Permissions, constraints *Constraints, issuedAt, expiresAt time.Time, opts ...Option) (*Capability, error) {
	cfg, err := options(opts)
	if err != nil {
		return nil, err
	}
	return derive(parent, signer, subject, perms, constraints, issuedAt, expiresAt, cfg)
}

func derive(parent *Capability, signer identity.Signer, subject string, perms Permissions, constraints *Constraints, issuedAt, expiresAt time.Time, cfg *issueConfig) (*Capability, error) {
	if parent == nil {
		return nil, reason.New(reason.CapabilityInvalid, "capability: no parent to derive from")
	}
	c, err := build(signer, subject, perms, constraints, issuedAt, expiresAt, cfg)
	if err != nil {
		return nil, err
	}
	if c.IssuerAgent != parent.SubjectAgent {
		return nil, reason.New(reason.CapabilityInvalid, fmt.Sprintf("capability: the deriving agent %s is not the parent's subject %s", c.IssuerAgent, parent.SubjectAgent))
	}
	pid := parent.CapabilityID
	c.ParentCapabilityID = &pid
	if err := attenuates(parent, c, parent.Constraints); err != nil {
		return nil, err
	}
	if err := c.sign(signer); err != nil {
		return nil, err
	}
	return c, nil
}

func build(signer identity.Signer, subject string, perms Permissions, constraints *Constraints, issuedAt, expiresAt time.Time, cfg *issueConfig) (*Capability, error) {
	invalid := func(format string, args ...any) error {
		return reason.New(reason.CapabilityInvalid, "capability: "+fmt.Sprintf(format, args...))
	}
	if signer == nil {
		return nil, invalid("no signer")
	}
	pub := signer.Public()
	if err := identity.CheckPublicKey(pub); err != nil { // its size, small order, encoding
		return nil, reason.Wrap(reason.CapabilityInvalid, "capability: the signer's public key", err)
	}
	id, issuer := cfg.id, cfg.issuer
	if id == "" {
		id = NewID()
	}
	pemText := identity.PublicKeyPEM(pub)
	if issuer == "" {
		issuer = identity.AgentID(pemText)
	}
	if subject == "" {
		return nil, invalid("no subject agent")
	}
	for _, t := range [...]time.Time{issuedAt, expiresAt} {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, invalid("time %s is outside years 1-9999", t)
		}
	}
	c := &Capability{
		CapabilityID:  id,
		IssuerAgent:   issuer,
		SubjectAgent:  subject,
		Permissions:   clonePermissions(perms),
		Constraints:   constraints.Clone(),
		IssuedAt:      canonical.TimestampOf(issuedAt.UTC()),
		ExpiresAt:     canonical.TimestampOf(expiresAt.UTC()),
		SignatureAlgo: Algorithm,
		PublicKey:     pemText,
		pub:           pub,
		pubText:       pemText,
	}
	if c.ExpiresAt.Micros <= c.IssuedAt.Micros {
		return nil, invalid("expires_at must be after issued_at")
	}
	if m := c.Permissions.MaxToolCalls; m != nil && *m < 0 {
		return nil, invalid("max_tool_calls is negative")
	}
	if k := c.Constraints; k != nil && k.MaxRuntimeSeconds != nil && *k.MaxRuntimeSeconds < 0 {
		return nil, invalid("max_runtime_seconds is negative")
	}
	// A Go string may hold invalid UTF-8, which has no JSON spelling that decodes back to it.
	strs := append([]string{c.CapabilityID, c.IssuerAgent, c.SubjectAgent}, c.Permissions.AllowedActions...)
	if k := c.Constraints; k != nil && k.DataBoundary != nil {
		strs = append(strs, *k.DataBoundary)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return nil, invalid("a string field is not valid UTF-8")
		}
	}
	return c, nil
}

// sign fills in the signature. It checks what the signer returned, since a Signer may be
// remote.
func (c *Capability) sign(signer identity.Signer) error {
	msg := c.SigningBytes()
	sig, err := signer.Sign(msg)
	if err != nil {
		return fmt.Errorf("capability: signing: %w", err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(c.pub, msg, sig) {
		return fmt.Errorf("capability: the signer returned an invalid signature")
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	c.sig, c.sigText = [ed25519.SignatureSize]byte(sig), c.Signature
	return nil
}

func clonePermissions(p Permissions) Permissions {
	out := Permissions{AllowedActions: slices.Clone(p.AllowedActions)}
	if out.AllowedActions == nil {
		out.AllowedActions = []string{}
	}
	if p.MaxToolCalls != nil {
		n := *p.MaxToolCalls
		out.MaxToolCalls = &n
	}
	return out
}
