// Package fastverify verifies Ed25519 signatures with a precomputed public key: the key is
// decompressed and its multiples tabulated once, so that each verification costs about
// 0.7× a crypto/ed25519.Verify, with exactly the standard library's accept/reject
// decisions (cofactorless equation, S < L, R compared byte for byte with the canonical
// encoding of the computed point, keys of any order and encoding treated as the standard
// library treats them). A differential test and a fuzz target hold it to that.
//
// It is built on github.com/oasisprotocol/curve25519-voi with its crypto/ed25519
// compatible options, and never batch-verifies: batch equations are cofactored and accept
// signatures crypto/ed25519 rejects.
//
// Opt in for a registry by giving it New as its verifier factory; every registered key is
// then precomputed when it is loaded, added or rotated in, and the pipeline verifies
// packets, capability links and approvals signed by registered keys with it. Keys that
// are not registered (registry.SelfCertified) keep the standard library's path.
//
//	reg, err := registry.Load("registry.json")
//	if err != nil { ... }
//	if err := reg.SetVerifierFactory(fastverify.New); err != nil { ... }
//	v, err := verify.New(reg, store)
package fastverify

import (
	"crypto/ed25519"
	"fmt"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

// stdlibOptions selects crypto/ed25519's verification semantics: small-order and
// non-canonical A allowed, small-order R allowed, non-canonical R refused, cofactorless
// equation compared on the encoding of R.
var stdlibOptions = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// Verifier is an identity.Verifier over one precomputed public key.
type Verifier struct {
	key *voi.ExpandedPublicKey
}

// New precomputes pub (about 4 µs) and returns its Verifier. It is an
// identity.VerifierFactory. It refuses keys that are not 32 bytes long or do not decode to
// a curve point; crypto/ed25519.Verify rejects every signature by such a key.
func New(pub ed25519.PublicKey) (identity.Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, not %d", identity.ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not a curve point", identity.ErrBadKey)
	}
	return &Verifier{key: k}, nil
}

// Verify reports whether sig is a valid signature of msg, exactly as
// crypto/ed25519.Verify(pub, msg, sig) would.
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyExpandedWithOptions(v.key, msg, sig, stdlibOptions)
}
