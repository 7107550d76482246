package registry

import (
	"bytes"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

// FuzzParse: no registry file panics the parser; an accepted one re-marshals to a file that
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
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
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
