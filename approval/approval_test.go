package approval

import (
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

func TestVerify(t *testing.T) {
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	approverKey, _ := identity.Generate()
	plainKey, _ := identity.Generate()
	approver := identity.NewKeySigner(approverKey)
	plain := identity.NewKeySigner(plainKey)
	reg := registry.New()
	if _, err := reg.Add("", approver.Public(), []string{RoleApprover}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add("", plain.Public(), nil, nil); err != nil {
		t.Fatal(err)
	}
	digest := [32]byte{1, 2, 3}
	mk := func(s identity.Signer, d [32]byte, decision string) *Approval {
		a, err := New(s, d, decision, now, time.Hour, "ok by ops")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	good := mk(approver, digest, Approve)
	tampered := mk(approver, digest, Approve)
	tampered.Decision = Deny
	cases := []struct {
		name string
		a    *Approval
		at   time.Time
		want reason.Code
	}{
		{"valid approve", good, now.Add(time.Minute), reason.OK},
		{"valid deny", mk(approver, digest, Deny), now, reason.OK},
		{"other packet", mk(approver, [32]byte{9}, Approve), now, reason.ApprovalInvalid},
		{"not an approver", mk(plain, digest, Approve), now, reason.ApprovalInvalid},
		{"expired", good, now.Add(time.Hour), reason.ApprovalInvalid},
		{"from the future", good, now.Add(-time.Minute), reason.ApprovalInvalid},
		{"tampered decision", tampered, now, reason.ApprovalInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.a, digest, reg, c.at, 30*time.Second)
			if got := reason.Of(err, ""); got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
		})
	}
	unregistered, _ := identity.Generate()
	if err := Verify(mk(identity.NewKeySigner(unregistered), digest, Approve), digest, reg, now, 0); reason.Of(err, "") != reason.ApprovalInvalid {
		t.Errorf("unregistered approver: %v", err)
	}
}

func TestRoundTripAndStrictDecode(t *testing.T) {
	k, _ := identity.Generate()
	a, err := New(identity.NewKeySigner(k), [32]byte{7}, Approve, time.Now(), time.Minute, "note ✓")
	if err != nil {
		t.Fatal(err)
	}
	v := a.Value()
	wire, err := canonical.Marshal(&v, canonical.Wire())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := canonical.Parse(wire, canonical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromValue(&parsed)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.SigningBytes()) != string(a.SigningBytes()) || b.Signature != a.Signature {
		t.Fatal("round trip changed the approval")
	}
	for name, bad := range map[string]string{
		"extra field": `{"x":"1"}`,
		"not object":  `[]`,
		"wrong type":  `{"version":1}`,
		"missing":     `{"version":"trusthandoff/approval/v1"}`,
	} {
		v, err := canonical.Parse([]byte(bad), canonical.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromValue(&v); reason.Of(err, "") != reason.MalformedEnvelope {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrong, _ := canonical.Parse([]byte(`{"note":false}`), canonical.Limits{})
	if _, err := FromValue(&wrong); !errors.Is(err, canonical.ErrFieldType) || err.Error() != "approval: note must be a string, not boolean" {
		t.Errorf("wrong type: got %v, want a field error naming note", err)
	}
	if _, err := New(identity.NewKeySigner(k), [32]byte{}, "maybe", time.Now(), time.Minute, ""); err == nil {
		t.Error("bad decision accepted")
	}
}
