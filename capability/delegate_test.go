package capability

import (
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/reason"
)

func TestDelegateRoot(t *testing.T) {
	c, err := Delegate(alice.signer, bob.id, []string{"read", "search"}, WithIssuedAt(t0.Add(123456789*time.Nanosecond)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsRoot() || c.IssuerAgent != alice.id || c.SubjectAgent != bob.id || c.Permissions.MaxToolCalls != nil || c.Constraints != nil {
		t.Fatalf("%+v", c)
	}
	if got := c.ExpiresAt.Micros - c.IssuedAt.Micros; got != DefaultTTL.Microseconds() {
		t.Fatalf("window %dµs, want DefaultTTL", got)
	}
	if c.IssuedAt.Micros != t0.Add(123456*time.Microsecond).UnixMicro() {
		t.Fatal("issued_at must be truncated to microseconds")
	}
	if err := VerifyChain([]*Capability{c}, registryOf(t, alice), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestDelegateDerivesWithTheParentsLimits(t *testing.T) {
	review := &Constraints{RequiresHumanReview: true, MaxRuntimeSeconds: i64(60), DataBoundary: sp("eu")}
	root, err := Delegate(alice.signer, bob.id, []string{"read", "search", "send"}, WithMaxToolCalls(10), WithConstraints(*review), WithIssuedAt(t0), WithTTL(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	reg := registryOf(t, alice, bob, carol)
	cases := []struct {
		name    string
		actions []string
		opts    []Option
		check   func(t *testing.T, c *Capability)
	}{
		{"everything inherited", nil, nil, func(t *testing.T, c *Capability) {
			if len(c.Permissions.AllowedActions) != 3 || *c.Permissions.MaxToolCalls != 10 || !c.Constraints.RequiresHumanReview ||
				*c.Constraints.MaxRuntimeSeconds != 60 || *c.Constraints.DataBoundary != "eu" {
				t.Fatalf("%+v %+v", c.Permissions, c.Constraints)
			}
		}},
		{"expiry capped at the parent's", []string{"read"}, []Option{WithTTL(48 * time.Hour)}, func(t *testing.T, c *Capability) {
			if c.ExpiresAt != root.ExpiresAt {
				t.Fatalf("expires %v, want the parent's %v", c.ExpiresAt.Time(), root.ExpiresAt.Time())
			}
		}},
		{"shorter ttl kept", []string{"read"}, []Option{WithTTL(5 * time.Minute)}, func(t *testing.T, c *Capability) {
			if c.ExpiresAt.Micros-c.IssuedAt.Micros != (5 * time.Minute).Microseconds() {
				t.Fatal("a ttl within the parent's is kept")
			}
		}},
		{"narrower limits kept, the rest inherited field by field", []string{"read"}, []Option{WithMaxToolCalls(2), WithConstraints(Constraints{MaxRuntimeSeconds: i64(30)})}, func(t *testing.T, c *Capability) {
			k := c.Constraints
			if *c.Permissions.MaxToolCalls != 2 || *k.MaxRuntimeSeconds != 30 || *k.DataBoundary != "eu" || !k.RequiresHumanReview {
				t.Fatalf("%+v %+v", c.Permissions, k)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			child, err := Delegate(bob.signer, carol.id, c.actions, append([]Option{WithParent(root), WithIssuedAt(t0.Add(time.Minute))}, c.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if *child.ParentCapabilityID != root.CapabilityID || child.IssuerAgent != bob.id {
				t.Fatalf("%+v", child)
			}
			c.check(t, child)
			if err := VerifyChain([]*Capability{root, child}, reg, t0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDelegateRefuses(t *testing.T) {
	root, err := Delegate(alice.signer, bob.id, []string{"read", "send"}, WithMaxToolCalls(10), WithConstraints(Constraints{DataBoundary: sp("eu")}), WithIssuedAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		signer  testAgent
		subject string
		actions []string
		opts    []Option
		code    reason.Code
	}{
		{"no actions for a root", alice, bob.id, nil, nil, reason.CapabilityInvalid},
		{"empty action", alice, bob.id, []string{"read", ""}, nil, reason.CapabilityInvalid},
		{"action with a comma", alice, bob.id, []string{"read,send"}, nil, reason.CapabilityInvalid},
		{"subject without prefix", alice, "bob", []string{"read"}, nil, reason.CapabilityInvalid},
		{"subject with a space", alice, "agent:b ob", []string{"read"}, nil, reason.CapabilityInvalid},
		{"subject empty", alice, "", []string{"read"}, nil, reason.CapabilityInvalid},
		{"subject a key file", alice, "bob.key.pub", []string{"read"}, nil, reason.CapabilityInvalid},
		{"zero ttl", alice, bob.id, []string{"read"}, []Option{WithTTL(0)}, reason.CapabilityInvalid},
		{"negative max", alice, bob.id, []string{"read"}, []Option{WithMaxToolCalls(-1)}, reason.CapabilityInvalid},
		{"nil parent", alice, bob.id, []string{"read"}, []Option{WithParent(nil)}, reason.CapabilityInvalid},
		{"empty id", alice, bob.id, []string{"read"}, []Option{WithID("")}, reason.CapabilityInvalid},
		{"bad issuer id", alice, bob.id, []string{"read"}, []Option{WithIssuerAgent("alice")}, reason.CapabilityInvalid},
		{"action outside the parent", bob, carol.id, []string{"delete"}, []Option{WithParent(root)}, reason.CapabilityEscalation},
		{"max above the parent", bob, carol.id, []string{"read"}, []Option{WithParent(root), WithMaxToolCalls(11)}, reason.CapabilityEscalation},
		{"other data boundary", bob, carol.id, []string{"read"}, []Option{WithParent(root), WithConstraints(Constraints{DataBoundary: sp("us")})}, reason.CapabilityEscalation},
		{"not the parent's subject", carol, dave.id, []string{"read"}, []Option{WithParent(root)}, reason.CapabilityInvalid},
		{"parent expired", bob, carol.id, []string{"read"}, []Option{WithParent(root), WithIssuedAt(t0.Add(DefaultTTL))}, reason.CapabilityInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]Option{WithIssuedAt(t0.Add(time.Minute))}, c.opts...)
			got, err := Delegate(c.signer.signer, c.subject, c.actions, opts...)
			if got != nil || codeOf(err) != c.code {
				t.Fatalf("err %v (%s), want %s", err, codeOf(err), c.code)
			}
		})
	}
}

func TestIssueAndDeriveRefuseDelegateOptions(t *testing.T) {
	root, err := Issue(alice.signer, bob.id, perms(nil, "read"), nil, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Option{WithParent(root), WithMaxToolCalls(1), WithConstraints(Constraints{}), WithTTL(time.Minute), WithIssuedAt(t0)} {
		if _, err := Issue(alice.signer, bob.id, perms(nil, "read"), nil, t0, t0.Add(time.Hour), o); err == nil || !strings.Contains(err.Error(), "Delegate") {
			t.Errorf("Issue: %v", err)
		}
		if _, err := Derive(root, bob.signer, carol.id, perms(nil, "read"), nil, t0, t0.Add(time.Hour), o); err == nil || !strings.Contains(err.Error(), "Delegate") {
			t.Errorf("Derive: %v", err)
		}
	}
}

// The packet's and the capability's permission types are one type: a capability's
// permissions go into a packet, and back, without conversion.
func TestPermissionsAreThePacketsType(t *testing.T) {
	c, err := Delegate(alice.signer, bob.id, []string{"read"}, WithMaxToolCalls(3), WithConstraints(Constraints{RequiresHumanReview: true}), WithIssuedAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Link()
	if l.Token != c.Token() || l.CapabilityID != c.CapabilityID || l.IssuerAgent != alice.id || l.SubjectAgent != bob.id ||
		*l.Permissions.MaxToolCalls != 3 || !l.Constraints.RequiresHumanReview || l.ParentCapabilityID != nil || l.ExpiresAt != c.ExpiresAt {
		t.Fatalf("%+v", l)
	}
	if err := AuthorizeConstraints([]*Capability{c}, l.Constraints); err != nil {
		t.Fatal(err)
	}
}
