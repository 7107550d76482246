package receipt_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// faultySigner is a remote signer (another process, a KMS) that misbehaves.
type faultySigner struct {
	pub  ed25519.PublicKey
	sign func(msg []byte) ([]byte, error)
}

func (s faultySigner) Public() ed25519.PublicKey       { return s.pub }
func (s faultySigner) Sign(msg []byte) ([]byte, error) { return s.sign(msg) }

// TestSignChecksTheSigner: a signer whose key is not an Ed25519 key, or whose signature
// does not verify under its own key, yields an error, never a receipt that would only
// surface later as an apparent forgery (and never a panic).
func TestSignChecksTheSigner(t *testing.T) {
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	errKMS := errors.New("kms unavailable")
	tests := []struct {
		name     string
		s        faultySigner
		sentinel error
	}{
		{"short public key", faultySigner{pub: ed25519.PublicKey{1, 2, 3}, sign: f.bob.s.Sign}, receipt.ErrExecutorKey},
		{"no public key", faultySigner{sign: f.bob.s.Sign}, receipt.ErrExecutorKey},
		{"small-order public key", faultySigner{pub: make(ed25519.PublicKey, 32), sign: func([]byte) ([]byte, error) { return make([]byte, 64), nil }}, receipt.ErrExecutorKey},
		{"signature by another key", faultySigner{pub: pub(f.bob), sign: f.carol.s.Sign}, receipt.ErrSignature},
		{"short signature", faultySigner{pub: pub(f.bob), sign: func(m []byte) ([]byte, error) { s, _ := f.bob.s.Sign(m); return s[:63], nil }}, receipt.ErrSignature},
		{"signature of other bytes", faultySigner{pub: pub(f.bob), sign: func(m []byte) ([]byte, error) { return f.bob.s.Sign(append(m, '!')) }}, receipt.ErrSignature},
		{"signer error", faultySigner{pub: pub(f.bob), sign: func([]byte) ([]byte, error) { return nil, errKMS }}, errKMS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := receipt.Sign(tc.s, "", env.Packet, packet.Rule04, params())
			if err == nil {
				t.Fatalf("Sign returned a receipt: %+v", r)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v does not wrap %v", err, tc.sentinel)
			}
		})
	}
	// The well-behaved twin signs.
	if _, err := receipt.Sign(faultySigner{pub: pub(f.bob), sign: f.bob.s.Sign}, "", env.Packet, packet.Rule04, params()); err != nil {
		t.Fatal(err)
	}
}
