package registry

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

func genKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

func rawKey(first, fill, last byte) ed25519.PublicKey {
	k := make(ed25519.PublicKey, 32)
	for i := range k {
		k[i] = fill
	}
	k[0], k[31] = first, last
	return k
}

// refusedKeys are raw keys that Add and Rotate must refuse.
var refusedKeys = map[string]ed25519.PublicKey{
	"identity point":              rawKey(0x01, 0x00, 0x00),
	"identity point, x = -0":      rawKey(0x01, 0x00, 0x80),
	"identity as y = p+1":         rawKey(0xee, 0xff, 0x7f),
	"order 2 (y = p-1)":           rawKey(0xec, 0xff, 0x7f),
	"order 4 (y = 0)":             rawKey(0x00, 0x00, 0x00),
	"order 4 as y = p":            rawKey(0xed, 0xff, 0x7f),
	"y = 2^255-1 (non-canonical)": rawKey(0xff, 0xff, 0x7f),
	"31 bytes":                    make(ed25519.PublicKey, 31),
	"empty":                       {},
	"order 8": {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
}

func TestAddRotateRefuseBadKeys(t *testing.T) {
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	for name, key := range refusedKeys {
		t.Run(name, func(t *testing.T) {
			r := New()
			if _, err := r.Add("", key, nil, nil); !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("Add without an id: %v", err)
			}
			if _, err := r.Add("agent:x", key, []string{RoleApprover}, nil); !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("Add with an id: %v", err)
			}
			if len(r.IDs()) != 0 {
				t.Fatalf("a refused Add left agents %v", r.IDs())
			}
			id, err := r.Add("", genKey(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Rotate(id, key, t0, time.Second); !errors.Is(err, identity.ErrBadKey) {
				t.Fatalf("Rotate: %v", err)
			}
			if a, _ := r.Agent(id); len(a.Keys) != 1 || a.Keys[0].NotAfter != nil {
				t.Fatal("a refused Rotate changed the agent's keys")
			}
		})
	}
}

// TestOneAgentPerKey: a key registered for one agent cannot be added to or rotated into
// another, so every registry Add and Rotate build is one Parse accepts.
func TestOneAgentPerKey(t *testing.T) {
	t0 := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	r := New()
	k1, k2, k3 := genKey(t), genKey(t), genKey(t)
	a, err := r.Add("", k1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add("agent:b", k2, nil, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		op   func() error
		ok   bool
	}{
		{"add a's key under b", func() error { _, err := r.Add("agent:b", k1, nil, nil); return err }, false},
		{"add a's key under a new agent", func() error { _, err := r.Add("agent:c", k1, nil, nil); return err }, false},
		{"add a's key again under a (merges roles)", func() error { _, err := r.Add(a, k1, []string{RoleApprover}, nil); return err }, true},
		{"add a's key again with its derived id", func() error { _, err := r.Add("", k1, nil, nil); return err }, true},
		{"add b's key with a derived id (another agent)", func() error { _, err := r.Add("", k2, nil, nil); return err }, false},
		{"rotate b's key into a", func() error { return r.Rotate(a, k2, t0, time.Second) }, false},
		{"rotate a's own key into a", func() error { return r.Rotate(a, k1, t0, time.Second) }, false},
		{"rotate a fresh key into a", func() error { return r.Rotate(a, k3, t0, time.Second) }, true},
		{"rotate a's new key into b", func() error { return r.Rotate("agent:b", k3, t0, time.Second) }, false},
	}
	for _, c := range cases {
		if err := c.op(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data); err != nil {
		t.Fatalf("the registry Add and Rotate built does not parse: %v", err)
	}
}

// TestUpdateRefusesBadKey: a refused key leaves the file as it was.
func TestUpdateRefusesBadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reg.json")
	if err := Update(path, func(r *Registry) error { _, err := r.Add("", genKey(t), nil, nil); return err }); err != nil {
		t.Fatal(err)
	}
	before, _ := Load(path)
	err := Update(path, func(r *Registry) error { _, err := r.Add("", refusedKeys["identity point"], nil, nil); return err })
	if !errors.Is(err, identity.ErrBadKey) {
		t.Fatalf("Update: %v", err)
	}
	after, err := Load(path)
	if err != nil || len(after.IDs()) != len(before.IDs()) {
		t.Fatalf("file changed: %v %v", after.IDs(), err)
	}
}
