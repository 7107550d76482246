package registry

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

type countingVerifier struct {
	pub ed25519.PublicKey
}

func (v *countingVerifier) Verify(msg, sig []byte) bool { return ed25519.Verify(v.pub, msg, sig) }

func newPub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

// TestVerifierFactory: SetVerifierFactory rebuilds every key, Add and Rotate use the
// factory, a failing factory leaves the registry unchanged and refuses new keys, and nil
// restores the standard library.
func TestVerifierFactory(t *testing.T) {
	r := New()
	a, b := newPub(t), newPub(t)
	id, _ := r.Add("", a, nil, nil)
	at := time.Unix(1000, 0)
	bind, err := r.Resolve(id, identity.PublicKeyPEM(a), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bind.Verifier.(*identity.StdVerifier); !ok {
		t.Fatalf("default verifier is %T, want *identity.StdVerifier", bind.Verifier)
	}
	calls := 0
	custom := func(pub ed25519.PublicKey) (identity.Verifier, error) { calls++; return &countingVerifier{pub}, nil }
	if err := r.SetVerifierFactory(custom); err != nil || calls != 1 {
		t.Fatalf("SetVerifierFactory: err %v, %d calls", err, calls)
	}
	if err := r.Rotate(id, b, at, 10*time.Second); err != nil || calls != 2 {
		t.Fatalf("Rotate: err %v, %d calls", err, calls)
	}
	for _, pub := range []ed25519.PublicKey{a, b} {
		bind, err := r.Resolve(id, identity.PublicKeyPEM(pub), at.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := bind.Verifier.(*countingVerifier); !ok || !v.pub.Equal(pub) {
			t.Fatalf("binding verifier %T is not the factory's for this key", bind.Verifier)
		}
	}
	failing := func(ed25519.PublicKey) (identity.Verifier, error) { return nil, errors.New("no") }
	nilVer := func(ed25519.PublicKey) (identity.Verifier, error) { return nil, nil }
	for _, f := range []identity.VerifierFactory{failing, nilVer} {
		if err := r.SetVerifierFactory(f); err == nil {
			t.Fatal("a failing factory was installed")
		}
		bind, _ := r.Resolve(id, identity.PublicKeyPEM(b), at.Add(time.Second))
		if _, ok := bind.Verifier.(*countingVerifier); !ok {
			t.Fatal("a failed SetVerifierFactory changed the keys' verifiers")
		}
	}
	r2 := New()
	r2.SetVerifierFactory(custom)
	r2.factory = failing // as if the factory started failing
	if _, err := r2.Add("", a, nil, nil); err == nil || len(r2.IDs()) != 0 {
		t.Fatalf("Add with a failing factory: err %v, agents %v", err, r2.IDs())
	}
	if err := r.SetVerifierFactory(nil); err != nil {
		t.Fatal(err)
	}
	bind, _ = r.Resolve(id, identity.PublicKeyPEM(a), at)
	if _, ok := bind.Verifier.(*identity.StdVerifier); !ok {
		t.Fatalf("nil factory: verifier %T", bind.Verifier)
	}
}

// TestValidKeyVerifierMatchesKeyValid: the same answer as KeyValid for every case, and
// a verifier exactly when valid.
func TestValidKeyVerifierMatchesKeyValid(t *testing.T) {
	r := New()
	a, b, other := newPub(t), newPub(t), newPub(t)
	start := time.Unix(1000, 0)
	id, _ := r.Add("", a, nil, &start)
	r.Rotate(id, b, start.Add(time.Hour), 30*time.Second)
	revokedID, _ := r.Add("", other, nil, nil)
	r.Revoke(revokedID, start)
	for _, c := range []struct {
		name  string
		agent string
		pub   ed25519.PublicKey
		at    time.Time
	}{
		{"valid", id, a, start.Add(time.Minute)},
		{"before not_before", id, a, start.Add(-time.Second)},
		{"in overlap", id, a, start.Add(time.Hour + 10*time.Second)},
		{"after overlap", id, a, start.Add(time.Hour + time.Minute)},
		{"new key", id, b, start.Add(2 * time.Hour)},
		{"other agent's key", id, other, start},
		{"unknown agent", "agent:nobody", a, start},
		{"revoked", revokedID, other, start.Add(time.Second)},
		{"before revocation", revokedID, other, start.Add(-time.Second)},
		{"short key", id, a[:31], start},
	} {
		v, ok := r.ValidKeyVerifier(c.agent, c.pub, c.at)
		if want := r.KeyValid(c.agent, c.pub, c.at); ok != want || ok != (v != nil) {
			t.Errorf("%s: ValidKeyVerifier (%v, %v), KeyValid %v", c.name, v, ok, want)
		}
	}
}
