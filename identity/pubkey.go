package identity

import (
	"crypto/ed25519"
	"fmt"
	"hash/maphash"
	"math/big"
	"sync/atomic"
)

// Why keys are checked at all: crypto/ed25519 verifies with the cofactorless equation
// [S]B = R + [k]A and accepts any 32 bytes that decode to a curve point as A. For the
// identity point A = (0, 1), encoded 01 00…00, the signature R = identity, S = 0 satisfies
// the equation for every message, so anyone can sign as an agent registered with that key;
// the other small-order points (the eight points of the torsion subgroup) verify such a
// forgery for one message in two, four or eight. crypto/ed25519 also accepts non-canonical
// encodings (y ≥ p), which give one point several spellings, and so several agent ids.

var (
	errKeySize         = fmt.Errorf("%w: public key is not %d bytes", ErrBadKey, ed25519.PublicKeySize)
	errKeyNonCanonical = fmt.Errorf("%w: public key is a non-canonical encoding (its y coordinate is not below 2^255-19)", ErrBadKey)
	errKeySmallOrder   = fmt.Errorf("%w: public key is a point of small order (one of the eight torsion points, under which signatures can be forged)", ErrBadKey)
	errKeyNotOnCurve   = fmt.Errorf("%w: public key does not decode to a point of the Ed25519 curve", ErrBadKey)
)

// CheckPublicKey reports whether pub is an Ed25519 public key this project accepts. It
// refuses, with an error wrapping ErrBadKey, keys that are not 32 bytes, non-canonical
// encodings (the y coordinate, the low 255 bits in little-endian order, is 2^255-19 or
// more), every encoding of the eight points of small order (the identity, the point of
// order 2, the two of order 4 and the four of order 8, whatever the sign bit), and
// encodings that do not decode to a curve point. Keys of mixed order (a prime-order point
// plus a torsion point) are accepted: no forgery is known under them, and telling them
// apart needs a full scalar multiplication.
//
// ParsePublicKeyPEM applies it to every key it parses.
func CheckPublicKey(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return errKeySize
	}
	key := [32]byte(pub)
	y := key
	y[31] &= 0x7f // the sign of x; y is the remaining 255 bits
	if !belowP(&y) {
		return errKeyNonCanonical
	}
	for i := range smallOrderY {
		if y == smallOrderY[i] {
			return errKeySmallOrder
		}
	}
	if checkedKeys.has(&key) {
		return nil
	}
	if !onCurve(&y) {
		return errKeyNotOnCurve
	}
	checkedKeys.add(&key)
	return nil
}

// belowP reports whether the little-endian y is below p = 2^255-19, whose encoding is
// ed ff … ff 7f.
func belowP(y *[32]byte) bool {
	if y[31] != 0x7f {
		return true // y[31] < 0x7f: the sign bit is already cleared
	}
	for i := 30; i >= 1; i-- {
		if y[i] != 0xff {
			return true
		}
	}
	return y[0] < 0xed
}

// smallOrderY are the canonical little-endian encodings of the y coordinates of the eight
// points of the torsion subgroup of edwards25519 (the same list as libsodium's
// ge25519_has_small_order): 1 (the identity, order 1), p-1 (order 2), 0 (the two points
// (±sqrt(-1), 0), order 4), and the two y values of the four points of order 8, which are
// roots of d·y⁴ + 2·y² - 1 = 0 (y² = -x² there, so doubling gives y = 0). Every torsion
// point is (±x, y) with y in this list, and non-canonical encodings (y ≥ p) are refused
// before the list is consulted, so comparing the low 255 bits catches every encoding.
// TestSmallOrderTable derives the list again with math/big.
var smallOrderY = [5][32]byte{
	{0x01},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
}

// Curve constants: p = 2^255-19 and d = -121665/121666 mod p (RFC 8032, section 5.1).
var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	curveD = func() *big.Int {
		d := new(big.Int).ModInverse(big.NewInt(121666), fieldP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, fieldP)
	}()
)

// onCurve reports whether some x satisfies -x² + y² = 1 + d·x²·y² for the canonical
// little-endian y, that is whether x² = (y²-1)/(d·y²+1) is a square mod p (RFC 8032,
// section 5.1.3, step 2). d·y²+1 is never 0 (d is not a square, -1 is), so the quotient is
// a square exactly when the product (y²-1)·(d·y²+1) is; its Jacobi symbol tells. The y
// values for which it is 0 (y = ±1) are small-order points, refused before this runs.
func onCurve(y *[32]byte) bool {
	var be [32]byte
	for i := range be {
		be[i] = y[31-i]
	}
	yy := new(big.Int).SetBytes(be[:])
	y2 := yy.Mul(yy, yy)
	y2.Mod(y2, fieldP)
	v := new(big.Int).Mul(curveD, y2)
	v.Add(v, big.NewInt(1))
	u := y2.Sub(y2, big.NewInt(1))
	u.Mul(u, v)
	u.Mod(u, fieldP)
	return big.Jacobi(u, fieldP) >= 0
}

// keyMemo remembers keys that passed the curve test, which costs about half an Ed25519
// verification, so that a verifier seeing the same issuers again (every capability link
// parses its key) pays it once. It is direct-mapped: each key has one slot, chosen by a
// hash with a per-process seed, and a newer key evicts the older. Only keys that passed
// are stored and a hit compares all 32 bytes, so the memo changes no answer, only its cost.
type keyMemo struct {
	seed  maphash.Seed
	slots [1024]atomic.Pointer[[32]byte]
}

var checkedKeys = &keyMemo{seed: maphash.MakeSeed()}

func (m *keyMemo) slot(key *[32]byte) *atomic.Pointer[[32]byte] {
	return &m.slots[maphash.Bytes(m.seed, key[:])%uint64(len(m.slots))]
}

func (m *keyMemo) has(key *[32]byte) bool {
	p := m.slot(key).Load()
	return p != nil && *p == *key
}

func (m *keyMemo) add(key *[32]byte) {
	k := *key
	m.slot(key).Store(&k)
}
