package identity

import (
	"crypto/ed25519"
	"fmt"
)

// Verifier verifies Ed25519 signatures by one public key. Every implementation must make
// exactly the accept/reject decisions of crypto/ed25519.Verify with that key, on every
// input: cofactorless equation, S < L, R compared byte for byte with the canonical
// encoding of the computed point, A and R of any order accepted as the standard library
// accepts them. A faster implementation may precompute the key (see the fastverify
// package); it must never batch-verify, because batch equations are cofactored and accept
// signatures the standard library rejects.
type Verifier interface {
	// Verify reports whether sig is a valid signature of msg by the verifier's key.
	Verify(msg, sig []byte) bool
}

// VerifierFactory builds the Verifier of one public key, once, ahead of verification (a
// registry calls it when a key is loaded, added or rotated in). It returns an error for
// a key it cannot serve.
type VerifierFactory func(pub ed25519.PublicKey) (Verifier, error)

// StdVerifier is the default Verifier: crypto/ed25519.Verify with a fixed key.
type StdVerifier struct{ pub ed25519.PublicKey }

// NewStdVerifier returns the standard-library Verifier for pub. It is a VerifierFactory;
// it refuses only keys that are not 32 bytes long.
func NewStdVerifier(pub ed25519.PublicKey) (Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, not %d", ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	return &StdVerifier{pub: pub}, nil
}

// Verify is crypto/ed25519.Verify(pub, msg, sig).
func (v *StdVerifier) Verify(msg, sig []byte) bool { return Verify(v.pub, msg, sig) }
