package registry

import (
	"bytes"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

// FuzzParse: no registry file panics the parser; an accepted one holds only keys
// identity.ParsePublicKeyPEM accepts, each under one agent, and re-marshals to a file that
// parses to the same content.
func FuzzParse(f *testing.F) {
	k, _ := identity.Generate()
	r := New()
	id, _ := r.Add("", identity.NewKeySigner(k).Public(), []string{RoleApprover}, nil)
	k2, _ := identity.Generate()
	r.Rotate(id, identity.NewKeySigner(k2).Public(), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), 30*time.Second)
	seed, _ := r.Marshal()
	f.Add(seed)
	f.Add([]byte(`{"version":1,"agents":{}}`))
	pem := q(identity.PublicKeyPEM(identity.NewKeySigner(k).Public()))
	for _, s := range []string{
		`{"version":1,"agents":{"a":{"keys":[{"public_key":` + pem + `}]},"b":{"keys":[{"public_key":` + pem + `}]}}}`,
		`{"version":1,"agents":{"a":{"keys":[{"public_key":` + pem + `}]},"a":{"keys":[{"public_key":` + pem + `}]}}}`,
		`{"version":1,"agents":{"a":{"keys":[{"public_key":` + pem + `},{"public_key":` + pem + `}]}}}`,
		`{"version":1,"agents":{"a":{"keys":[{"public_key":` + q(identityPEM()) + `}]}}}`,
		`{"version":1,"agents":{"a":{"keys":[{"public_key":` + pem + `,"not_before":null}],"roles":["approver"],"revoked_at":"2026-04-01T00:00:00+02:00"}}}`,
		`{"version":1,"agents":{}} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		owner := map[string]string{}
		for _, id := range r.IDs() {
			a, _ := r.Agent(id)
			for _, k := range a.Keys {
				if _, err := identity.ParsePublicKeyPEM(k.PublicKey); err != nil {
					t.Fatalf("accepted a key ParsePublicKeyPEM refuses: %v", err)
				}
				if o, dup := owner[k.PublicKey]; dup {
					t.Fatalf("accepted one key under %q and %q", o, id)
				}
				owner[k.PublicKey] = id
			}
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		out2, _ := r2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatal("registry file unstable across a round trip")
		}
	})
}
