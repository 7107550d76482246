package registry

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

func code(err error) reason.Code { return reason.Of(err, "") }

func TestResolveRotationRevocation(t *testing.T) {
	k1, _ := identity.Generate()
	k2, _ := identity.Generate()
	other, _ := identity.Generate()
	r := New()
	id, err := r.Add("", identity.NewKeySigner(k1).Public(), nil, nil)
	if err != nil || id != identity.AgentIDOf(identity.NewKeySigner(k1).Public()) {
		t.Fatalf("Add: %v %s", err, id)
	}
	pem1 := identity.PublicKeyPEM(identity.NewKeySigner(k1).Public())
	pem2 := identity.PublicKeyPEM(identity.NewKeySigner(k2).Public())
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	if err := r.Rotate(id, identity.NewKeySigner(k2).Public(), t0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		agent   string
		pem     string
		at      time.Time
		want    reason.Code
		overlap bool
	}{
		{"old key before rotation", id, pem1, t0.Add(-time.Hour), reason.OK, false},
		{"old key inside overlap", id, pem1, t0.Add(10 * time.Second), reason.OK, true},
		{"old key after overlap", id, pem1, t0.Add(30 * time.Second), reason.PublicKeyMismatch, false},
		{"new key before rotation", id, pem2, t0.Add(-time.Second), reason.PublicKeyMismatch, false},
		{"new key after rotation", id, pem2, t0.Add(time.Hour), reason.OK, false},
		{"unregistered key", id, identity.PublicKeyPEM(identity.NewKeySigner(other).Public()), t0, reason.PublicKeyMismatch, false},
		{"unknown agent", "agent:nobody", pem1, t0, reason.UnknownAgent, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := r.Resolve(c.agent, c.pem, c.at)
			if code(err) != c.want {
				t.Fatalf("code %q (%v), want %q", code(err), err, c.want)
			}
			if err == nil && b.OverlapUsed != c.overlap {
				t.Errorf("overlap = %v, want %v", b.OverlapUsed, c.overlap)
			}
		})
	}
	if err := r.Revoke(id, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(id, pem2, t0.Add(2*time.Hour)); code(err) != reason.AgentRevoked {
		t.Errorf("after revocation: %v", err)
	}
	if _, err := r.Resolve(id, pem2, t0.Add(30*time.Minute)); err != nil {
		t.Errorf("forensic verification before the revocation must still pass: %v", err)
	}
	if r.KeyValid(id, identity.NewKeySigner(k2).Public(), t0.Add(2*time.Hour)) {
		t.Error("KeyValid after revocation")
	}
	if err := r.Rotate(id, identity.NewKeySigner(other).Public(), t0, 301*time.Second); err == nil {
		t.Error("overlap above the maximum accepted")
	}
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg.json")
	k, _ := identity.Generate()
	pub := identity.NewKeySigner(k).Public()
	var id string
	err := Update(path, func(r *Registry) error {
		var err error
		id, err = r.Add("", pub, []string{RoleApprover}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := r.Agent(id)
	if !ok || !a.HasRole(RoleApprover) || !r.KeyValid(id, pub, time.Now()) {
		t.Fatalf("round trip lost data: %+v", a)
	}
	for name, bad := range map[string]string{
		"unknown field": `{"version":1,"agents":{},"extra":1}`,
		"bad version":   `{"version":2,"agents":{}}`,
		"bad key":       `{"version":1,"agents":{"a":{"keys":[{"public_key":"nope"}]}}}`,
		"no keys":       `{"version":1,"agents":{"a":{"keys":[]}}}`,
		"not json":      `{`,
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
