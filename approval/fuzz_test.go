package approval

import (
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
)

// FuzzFromValue: no input panics; an accepted approval re-encodes to the same signing bytes.
func FuzzFromValue(f *testing.F) {
	k, _ := identity.Generate()
	a, _ := New(identity.NewKeySigner(k), [32]byte{1}, Approve, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), time.Hour, "n")
	v := a.Value()
	seed, _ := canonical.Marshal(&v, canonical.Wire())
	f.Add(seed)
	f.Add([]byte(`{"version":"trusthandoff/approval/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := canonical.Parse(data, canonical.Limits{})
		if err != nil {
			return
		}
		a, err := FromValue(&v)
		if err != nil {
			return
		}
		v2 := a.Value()
		b, err := FromValue(&v2)
		if err != nil || string(a.SigningBytes()) != string(b.SigningBytes()) {
			t.Fatalf("unstable approval: %v", err)
		}
	})
}
