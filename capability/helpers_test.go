package capability

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// t0 is the issuing instant of test capabilities; they expire an hour later.
var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// testAgent is a deterministic agent: its key comes from its name.
type testAgent struct {
	signer *identity.KeySigner
	id     string
	pem    string
}

func agent(name string) testAgent {
	seed := sha256.Sum256([]byte("trusthandoff capability test agent " + name))
	s := identity.NewKeySigner(ed25519.NewKeyFromSeed(seed[:]))
	pem := identity.PublicKeyPEM(s.Public())
	return testAgent{signer: s, id: identity.AgentID(pem), pem: pem}
}

var (
	alice = agent("alice")
	bob   = agent("bob")
	carol = agent("carol")
	dave  = agent("dave")
	eve   = agent("eve")
)

func registryOf(tb testing.TB, agents ...testAgent) *StaticRegistry {
	tb.Helper()
	m := map[string]string{}
	for _, a := range agents {
		m[a.id] = a.pem
	}
	r, err := NewStaticRegistry(m)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func i64(n int64) *int64  { return &n }
func sp(s string) *string { return &s }
func perms(max *int64, actions ...string) Permissions {
	return Permissions{AllowedActions: actions, MaxToolCalls: max}
}

// spec describes one link for forge.
type spec struct {
	id          string
	by          testAgent
	to          testAgent
	perms       Permissions
	constraints *Constraints
	issued      time.Time
	expires     time.Time
}

// forge signs a link exactly as described, bypassing Derive's attenuation check, so tests
// can build authentic but escalating links. parent may be nil for a root.
func forge(tb testing.TB, parent *Capability, s spec) *Capability {
	tb.Helper()
	if s.issued.IsZero() {
		s.issued = t0
	}
	if s.expires.IsZero() {
		s.expires = t0.Add(time.Hour)
	}
	c, err := build(s.by.signer, s.to.id, s.perms, s.constraints, s.issued, s.expires, &issueConfig{id: s.id})
	if err != nil {
		tb.Fatal(err)
	}
	if parent != nil {
		pid := parent.CapabilityID
		c.ParentCapabilityID = &pid
	}
	if err := c.sign(s.by.signer); err != nil {
		tb.Fatal(err)
	}
	return c
}

// resign re-signs c with a after a test edited it.
func resign(tb testing.TB, c *Capability, a testAgent) *Capability {
	tb.Helper()
	if err := c.sign(a.signer); err != nil {
		tb.Fatal(err)
	}
	return c
}

func clone(c *Capability) *Capability {
	d := *c
	d.Permissions = clonePermissions(c.Permissions)
	d.Constraints = c.Constraints.Clone()
	if c.ParentCapabilityID != nil {
		p := *c.ParentCapabilityID
		d.ParentCapabilityID = &p
	}
	return &d
}

func encodeSig(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

func codeOf(err error) reason.Code {
	if err == nil {
		return reason.OK
	}
	var e *reason.Error
	if !errors.As(err, &e) {
		return "(not a *reason.Error)"
	}
	return e.Code
}
