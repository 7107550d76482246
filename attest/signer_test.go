package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

type signerAgent struct {
	s  *identity.KeySigner
	id string
}

func newSignerAgent(seed byte) signerAgent {
	s := identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	return signerAgent{s, identity.AgentIDOf(s.Public())}
}

func (a signerAgent) attest(t *testing.T, at time.Time, opts ...CreateOption) *Attestation {
	t.Helper()
	att, err := Create(a.s, "pkt-1", StatusOK, mustValue(t, `{"rows":3}`), nil, at, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return att
}

// revocations is a RevocationStore in memory; err makes every lookup fail.
type revocations struct {
	revoked map[string]bool
	err     error
	lookups int
}

func (r *revocations) Revoked(_ context.Context, kind revocation.Kind, id string) (revocation.Entry, bool, error) {
	r.lookups++
	if r.err != nil {
		return revocation.Entry{}, false, r.err
	}
	if kind == revocation.KindAgent && r.revoked[id] {
		return revocation.Entry{Kind: kind, ID: id, At: testNow.Add(-time.Hour)}, true, nil
	}
	return revocation.Entry{}, false, nil
}

var _ RevocationStore = (*revocations)(nil)
var _ RevocationStore = revocation.NewMemory(revocation.MemoryConfig{})

func TestVerifyRegistered(t *testing.T) {
	bob, bob2, bob3, mallory, olga := newSignerAgent(1), newSignerAgent(2), newSignerAgent(3), newSignerAgent(4), newSignerAgent(5)
	reg := registry.New()
	for _, a := range []signerAgent{bob, mallory, olga} {
		if _, err := reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// bob rotated to bob2 a minute ago (overlap 30 s, over), then to bob3 just now (overlap open)
	if err := reg.Rotate(bob.id, bob2.s.Public(), testNow.Add(-time.Minute), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := reg.Rotate(bob.id, bob3.s.Public(), testNow.Add(-10*time.Second), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := reg.Revoke(olga.id, testNow.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		a        *Attestation
		code     reason.Code
		sentinel error
		signer   string
		overlap  bool
	}{
		{"own key", mallory.attest(t, testNow), reason.OK, nil, mallory.id, false},
		{"current key after rotation, registered id", bob3.attest(t, testNow, WithSignedBy(bob.id)), reason.OK, nil, bob.id, false},
		{"key inside its overlap window", bob2.attest(t, testNow, WithSignedBy(bob.id)), reason.OK, nil, bob.id, true},
		{"first key after its overlap", bob.attest(t, testNow), reason.PublicKeyMismatch, ErrKeyMismatch, "", false},
		{"rotated key under its own id", bob3.attest(t, testNow), reason.UnknownAgent, ErrUnknownSigner, "", false},
		{"claims another agent", mallory.attest(t, testNow, WithSignedBy(bob.id)), reason.PublicKeyMismatch, ErrKeyMismatch, "", false},
		{"claims an unknown agent", mallory.attest(t, testNow, WithSignedBy("agent:nobody")), reason.UnknownAgent, ErrUnknownSigner, "", false},
		{"revoked in the registry", olga.attest(t, testNow), reason.AgentRevoked, ErrSignerRevoked, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := VerifyRegistered(context.Background(), c.a, reg, testNow.Add(time.Second))
			if c.code == reason.OK {
				if err != nil {
					t.Fatal(err)
				}
				if s.AgentID != c.signer || s.OverlapUsed != c.overlap || identity.Fingerprint(s.PublicKey) != c.a.Fingerprint {
					t.Fatalf("signer %+v", s)
				}
				return
			}
			wantCode(t, err, c.code, c.sentinel)
			if s.AgentID != "" {
				t.Fatal("a signer came back with an error")
			}
		})
	}
	t.Run("signature still checked", func(t *testing.T) {
		a := bob3.attest(t, testNow, WithSignedBy(bob.id))
		a.Status = StatusError
		_, err := VerifyRegistered(context.Background(), a, reg, testNow)
		wantCode(t, err, reason.InvalidSignature, ErrSignature)
	})
	t.Run("a bare key does not vouch for a registered id", func(t *testing.T) {
		a := bob3.attest(t, testNow, WithSignedBy(bob.id))
		wantCode(t, Verify(a, bob3.s.Public(), testNow), reason.PublicKeyMismatch, ErrKeyMismatch)
	})
	t.Run("no registry", func(t *testing.T) {
		if _, err := VerifyRegistered(context.Background(), mallory.attest(t, testNow), nil, testNow); err == nil {
			t.Fatal("accepted without a registry")
		}
	})
	t.Run("nil attestation", func(t *testing.T) {
		_, err := VerifyRegistered(context.Background(), nil, reg, testNow)
		wantCode(t, err, reason.MalformedEnvelope, nil)
	})
}

func TestRevokedSignerRejected(t *testing.T) {
	bob, carol := newSignerAgent(1), newSignerAgent(2)
	reg := registry.New()
	reg.Add("", bob.s.Public(), nil, nil)
	reg.Add("", carol.s.Public(), nil, nil)
	storeDown := errors.New("connection refused")
	cases := []struct {
		name     string
		store    *revocations
		code     reason.Code
		sentinel error
	}{
		{"not revoked", &revocations{}, reason.OK, nil},
		{"another agent revoked", &revocations{revoked: map[string]bool{carol.id: true}}, reason.OK, nil},
		{"signer revoked", &revocations{revoked: map[string]bool{bob.id: true}}, reason.AgentRevoked, ErrSignerRevoked},
		{"store down", &revocations{err: storeDown}, reason.StoreUnavailable, ErrStoreUnavailable},
	}
	for _, c := range cases {
		for _, registered := range []bool{false, true} {
			name := c.name + "/bare key"
			if registered {
				name = c.name + "/registry"
			}
			t.Run(name, func(t *testing.T) {
				nonces := &memStore{}
				a := bob.attest(t, testNow)
				opts := []Option{WithRevocations(c.store), WithNonceStore(nonces)}
				var err error
				if registered {
					_, err = VerifyRegistered(context.Background(), a, reg, testNow, opts...)
				} else {
					err = Verify(a, bob.s.Public(), testNow, opts...)
				}
				if c.code == reason.OK {
					if err != nil || nonces.records != 1 {
						t.Fatalf("%v, %d nonce records", err, nonces.records)
					}
					return
				}
				wantCode(t, err, c.code, c.sentinel)
				if c.sentinel == ErrStoreUnavailable && !errors.Is(err, storeDown) {
					t.Error("the store's error must be wrapped")
				}
				if nonces.records != 0 {
					t.Error("a rejected attestation consumed its nonce")
				}
			})
		}
	}
	t.Run("forgery is not looked up", func(t *testing.T) {
		store := &revocations{}
		a := bob.attest(t, testNow)
		a.PacketID = "pkt-2"
		wantCode(t, Verify(a, bob.s.Public(), testNow, WithRevocations(store)), reason.InvalidSignature, ErrSignature)
		if store.lookups != 0 {
			t.Fatal("the revocation store was queried for a forgery")
		}
	})
	t.Run("real store", func(t *testing.T) {
		store := revocation.NewMemory(revocation.MemoryConfig{})
		if err := store.Revoke(context.Background(), revocation.Entry{Kind: revocation.KindAgent, ID: bob.id, At: testNow}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, Verify(bob.attest(t, testNow), bob.s.Public(), testNow, WithRevocations(store)), reason.AgentRevoked, ErrSignerRevoked)
		if err := Verify(carol.attest(t, testNow), carol.s.Public(), testNow, WithRevocations(store)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExpectedSigner(t *testing.T) {
	bob, bob2, mallory := newSignerAgent(1), newSignerAgent(2), newSignerAgent(3)
	reg := registry.New()
	reg.Add("", bob.s.Public(), nil, nil)
	reg.Add("", mallory.s.Public(), nil, nil)
	reg.Rotate(bob.id, bob2.s.Public(), testNow.Add(-time.Hour), 0)
	cases := []struct {
		name   string
		a      *Attestation
		expect string
		ok     bool
	}{
		{"the expected signer", mallory.attest(t, testNow), mallory.id, true},
		{"the expected signer after rotation", bob2.attest(t, testNow, WithSignedBy(bob.id)), bob.id, true},
		{"someone else", mallory.attest(t, testNow), bob.id, false},
		{"the rotated key's own id", bob2.attest(t, testNow, WithSignedBy(bob.id)), bob2.id, false},
		{"a prefix of the id", mallory.attest(t, testNow), mallory.id[:len(mallory.id)-1], false},
		{"the id in another case", mallory.attest(t, testNow), "agent:" + swapCase(mallory.id[6:]), false},
		{"the id with a trailing space", mallory.attest(t, testNow), mallory.id + " ", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyRegistered(context.Background(), c.a, reg, testNow, WithExpectedSigner(c.expect))
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, reason.PublicKeyMismatch, ErrUnexpectedSigner)
		})
	}
	t.Run("bare key", func(t *testing.T) {
		a := mallory.attest(t, testNow)
		wantCode(t, Verify(a, mallory.s.Public(), testNow, WithExpectedSigner(bob.id)), reason.PublicKeyMismatch, ErrUnexpectedSigner)
		if err := Verify(a, mallory.s.Public(), testNow, WithExpectedSigner(mallory.id)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty expectation is an error", func(t *testing.T) {
		if err := Verify(mallory.attest(t, testNow), mallory.s.Public(), testNow, WithExpectedSigner("")); err == nil {
			t.Fatal("accepted")
		}
	})
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 32
		case 'A' <= c && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestCreateWithSignedBy(t *testing.T) {
	bob := newSignerAgent(1)
	for _, id := range []string{"", "\xff"} {
		if _, err := Create(bob.s, "pkt-1", StatusOK, mustValue(t, `{}`), nil, testNow, WithSignedBy(id)); err == nil {
			t.Errorf("signed_by %q accepted", id)
		}
	}
	a := bob.attest(t, testNow, WithSignedBy("agent:bob"))
	if a.SignedBy != "agent:bob" || a.Fingerprint != identity.Fingerprint(bob.s.Public()) {
		t.Fatalf("%+v", a)
	}
}
