package capability

import (
	"crypto/ed25519"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

func TestIssue(t *testing.T) {
	actions := []string{"read", "search"}
	paris := time.FixedZone("CEST", 2*3600)
	c, err := Issue(alice.signer, bob.id, Permissions{AllowedActions: actions, MaxToolCalls: i64(3)}, nil,
		t0.In(paris).Add(123456789*time.Nanosecond), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	actions[0] = "delete" // the capability holds its own copy
	if c.IssuerAgent != alice.id || c.SubjectAgent != bob.id || c.PublicKey != alice.pem || !c.IsRoot() ||
		c.SignatureAlgo != Algorithm || c.Permissions.AllowedActions[0] != "read" {
		t.Fatalf("unexpected capability %+v", c)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(c.CapabilityID) {
		t.Fatalf("id %q is not a v4 UUID", c.CapabilityID)
	}
	if got := string(c.JSON()); !regexp.MustCompile(`"issued_at":"2026-04-01T12:00:00\.123456Z"`).MatchString(got) {
		t.Fatalf("issued_at not in UTC microseconds: %s", got)
	}
	if !c.VerifySignature() {
		t.Fatal("signature does not verify")
	}
	d, err := DecodeToken(c.Token(), Limits{})
	if err != nil || d.Token() != c.Token() {
		t.Fatalf("token does not round-trip: %v", err)
	}
	if err := VerifyChain([]*Capability{d}, allAgents(t), now); err != nil {
		t.Fatal(err)
	}

	c2, err := Issue(alice.signer, bob.id, perms(nil), nil, t0, t0.Add(time.Hour), WithID("fixed"), WithIssuerAgent("agent:custom"))
	if err != nil || c2.CapabilityID != "fixed" || c2.IssuerAgent != "agent:custom" {
		t.Fatalf("options ignored: %+v %v", c2, err)
	}
	if c2.Permissions.AllowedActions == nil || string(c2.JSON()) == "" {
		t.Fatal("nil actions must encode as []")
	}
	if a, b := NewID(), NewID(); a == b {
		t.Fatal("NewID repeats")
	}
}

// failingSigner is a Signer that misbehaves.
type failingSigner struct {
	pub ed25519.PublicKey
	sig []byte
	err error
}

func (s failingSigner) Public() ed25519.PublicKey     { return s.pub }
func (s failingSigner) Sign([]byte) ([]byte, error)   { return s.sig, s.err }
func (s failingSigner) with(sig []byte) failingSigner { s.sig = sig; return s }

func TestIssueErrors(t *testing.T) {
	badSigner := failingSigner{pub: alice.signer.Public()}
	tests := []struct {
		name    string
		signer  identity.Signer
		subject string
		perms   Permissions
		c       *Constraints
		from    time.Time
		to      time.Time
		want    reason.Code // "" for a plain error
	}{
		{"nil signer", nil, bob.id, perms(nil), nil, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"short public key", failingSigner{pub: make([]byte, 31)}, bob.id, perms(nil), nil, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"no subject", alice.signer, "", perms(nil), nil, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"expires at issue", alice.signer, bob.id, perms(nil), nil, t0, t0, reason.CapabilityInvalid},
		{"expires before issue", alice.signer, bob.id, perms(nil), nil, t0, t0.Add(-time.Hour), reason.CapabilityInvalid},
		{"sub-microsecond window", alice.signer, bob.id, perms(nil), nil, t0, t0.Add(time.Nanosecond), reason.CapabilityInvalid},
		{"year 10000", alice.signer, bob.id, perms(nil), nil, t0, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), reason.CapabilityInvalid},
		{"negative max_tool_calls", alice.signer, bob.id, perms(i64(-1)), nil, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"negative max_runtime_seconds", alice.signer, bob.id, perms(nil), &Constraints{MaxRuntimeSeconds: i64(-1)}, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"invalid UTF-8 action", alice.signer, bob.id, perms(nil, "re\xffad"), nil, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"invalid UTF-8 boundary", alice.signer, bob.id, perms(nil), &Constraints{DataBoundary: sp("\xff")}, t0, t0.Add(time.Hour), reason.CapabilityInvalid},
		{"signer fails", failingSigner{pub: alice.signer.Public(), err: errors.New("hsm offline")}, bob.id, perms(nil), nil, t0, t0.Add(time.Hour), ""},
		{"signer returns a short signature", badSigner.with(make([]byte, 63)), bob.id, perms(nil), nil, t0, t0.Add(time.Hour), ""},
		{"signer returns a wrong signature", badSigner.with(make([]byte, 64)), bob.id, perms(nil), nil, t0, t0.Add(time.Hour), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Issue(tc.signer, tc.subject, tc.perms, tc.c, tc.from, tc.to)
			if err == nil || c != nil {
				t.Fatalf("Issue = %v, %v; want an error", c, err)
			}
			var re *reason.Error
			if tc.want == "" {
				if errors.As(err, &re) {
					t.Fatalf("want a plain error, got code %s", re.Code)
				}
			} else if got := codeOf(err); got != tc.want {
				t.Fatalf("code %s, want %s (%v)", got, tc.want, err)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	b := baseChain(t) // root alice→bob, hop1 bob→carol {120, eu, review}
	child, err := Derive(b[1], carol.signer, dave.id, perms(i64(2), "read"), nil, t0.Add(time.Minute), t0.Add(20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Signed with the deriving agent's own key, not the parent's (the reference's bug).
	if child.PublicKey != carol.pem || child.IssuerAgent != carol.id || *child.ParentCapabilityID != "hop1" {
		t.Fatalf("unexpected child %+v", child)
	}
	if err := VerifyChain([]*Capability{b[0], b[1], child}, allAgents(t), now); err != nil {
		t.Fatal(err)
	}

	base := func(edit func(*Permissions, **Constraints, *time.Time)) (Permissions, *Constraints, time.Time) {
		p := perms(i64(2), "read")
		c := &Constraints{MaxRuntimeSeconds: i64(120), DataBoundary: sp("eu"), RequiresHumanReview: true}
		exp := t0.Add(20 * time.Minute)
		edit(&p, &c, &exp)
		return p, c, exp
	}
	tests := []struct {
		name   string
		parent *Capability
		signer testAgent
		edit   func(*Permissions, **Constraints, *time.Time)
		want   reason.Code
	}{
		{"narrower", b[1], carol, func(*Permissions, **Constraints, *time.Time) {}, reason.OK},
		{"inherits constraints", b[1], carol, func(_ *Permissions, c **Constraints, _ *time.Time) { *c = nil }, reason.OK},
		{"no parent", nil, carol, func(*Permissions, **Constraints, *time.Time) {}, reason.CapabilityInvalid},
		{"not the parent's subject", b[1], bob, func(*Permissions, **Constraints, *time.Time) {}, reason.CapabilityInvalid},
		{"outlives parent", b[1], carol, func(_ *Permissions, _ **Constraints, e *time.Time) { *e = t0.Add(2 * time.Hour) }, reason.CapabilityEscalation},
		{"extra action", b[1], carol, func(p *Permissions, _ **Constraints, _ *time.Time) {
			p.AllowedActions = append(p.AllowedActions, "write")
		}, reason.CapabilityEscalation},
		{"more tool calls", b[1], carol, func(p *Permissions, _ **Constraints, _ *time.Time) { p.MaxToolCalls = i64(6) }, reason.CapabilityEscalation},
		{"unlimited tool calls", b[1], carol, func(p *Permissions, _ **Constraints, _ *time.Time) { p.MaxToolCalls = nil }, reason.CapabilityEscalation},
		{"longer runtime", b[1], carol, func(_ *Permissions, c **Constraints, _ *time.Time) { (*c).MaxRuntimeSeconds = i64(500) }, reason.CapabilityEscalation},
		{"other boundary", b[1], carol, func(_ *Permissions, c **Constraints, _ *time.Time) { (*c).DataBoundary = sp("us") }, reason.CapabilityEscalation},
		{"review off", b[1], carol, func(_ *Permissions, c **Constraints, _ *time.Time) { (*c).RequiresHumanReview = false }, reason.CapabilityEscalation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, c, exp := base(tc.edit)
			got, err := Derive(tc.parent, tc.signer.signer, dave.id, p, c, t0.Add(time.Minute), exp)
			if code := codeOf(err); code != tc.want {
				t.Fatalf("Derive = %s (%v), want %s", code, err, tc.want)
			}
			if err != nil && got != nil {
				t.Fatal("returned a capability with an error")
			}
			if err == nil {
				if err := VerifyChain([]*Capability{b[0], b[1], got}, allAgents(t), now); err != nil {
					t.Fatalf("derived chain does not verify: %v", err)
				}
			}
		})
	}
}
