package identity

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// The tests below check CheckPublicKey against curve arithmetic done here with math/big,
// from the constants of RFC 8032, section 5.1, not against the table in pubkey.go.

var (
	tP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// d as RFC 8032 prints it.
	tD, _ = new(big.Int).SetString("37095705934669439343138083508754565189542113879843219016388785533085940283555", 10)
)

type point struct{ x, y *big.Int }

func mod(x *big.Int) *big.Int { return x.Mod(x, tP) }

func inv(x *big.Int) *big.Int { return new(big.Int).ModInverse(x, tP) }

func (a point) add(b point) point {
	x1y2 := mod(new(big.Int).Mul(a.x, b.y))
	y1x2 := mod(new(big.Int).Mul(a.y, b.x))
	x1x2 := mod(new(big.Int).Mul(a.x, b.x))
	y1y2 := mod(new(big.Int).Mul(a.y, b.y))
	t := mod(new(big.Int).Mul(tD, mod(new(big.Int).Mul(x1x2, y1y2))))
	x := mod(new(big.Int).Mul(new(big.Int).Add(x1y2, y1x2), inv(mod(new(big.Int).Add(big.NewInt(1), t)))))
	y := mod(new(big.Int).Mul(new(big.Int).Add(y1y2, x1x2), inv(mod(new(big.Int).Sub(big.NewInt(1), t)))))
	return point{x, y}
}

func (a point) isIdentity() bool { return a.x.Sign() == 0 && a.y.Cmp(big.NewInt(1)) == 0 }

func (a point) onCurve() bool {
	x2 := mod(new(big.Int).Mul(a.x, a.x))
	y2 := mod(new(big.Int).Mul(a.y, a.y))
	lhs := mod(new(big.Int).Sub(y2, x2))
	rhs := mod(new(big.Int).Add(big.NewInt(1), mod(new(big.Int).Mul(tD, mod(new(big.Int).Mul(x2, y2))))))
	return lhs.Cmp(rhs) == 0
}

// order returns the order of a when it divides 8, else 0.
func (a point) order() int {
	q := a
	for n := 1; n <= 8; n++ {
		if q.isIdentity() {
			return n
		}
		q = q.add(a)
	}
	return 0
}

// encode is the RFC 8032 encoding: y little-endian, the low bit of x in bit 255.
func encode(y *big.Int, sign uint) []byte {
	var be [32]byte
	y.FillBytes(be[:])
	out := make([]byte, 32)
	for i := range out {
		out[i] = be[31-i]
	}
	out[31] |= byte(sign << 7)
	return out
}

func (a point) encode() []byte { return encode(a.y, a.x.Bit(0)) }

// torsionPoints derives the eight points of order dividing 8. The group of edwards25519
// has 8·ℓ points for a prime ℓ, so it holds exactly eight such points: finding eight
// distinct ones shows the list is complete.
func torsionPoints(t *testing.T) []point {
	t.Helper()
	zero, one := big.NewInt(0), big.NewInt(1)
	pm1 := new(big.Int).Sub(tP, one)
	sqrtM1 := new(big.Int).ModSqrt(pm1, tP)
	pts := []point{
		{zero, one},                          // identity
		{zero, pm1},                          // order 2
		{sqrtM1, zero},                       // order 4
		{new(big.Int).Sub(tP, sqrtM1), zero}, // order 4
	}
	// Order 8: doubling (x, y) gives y = 0 exactly when y² = -x²; on the curve that is
	// d·y⁴ + 2·y² - 1 = 0, so y² = s = (-1 ± sqrt(1+d)) / d.
	root := new(big.Int).ModSqrt(mod(new(big.Int).Add(one, tD)), tP)
	if root == nil {
		t.Fatal("1+d has no square root")
	}
	for _, r := range []*big.Int{root, new(big.Int).Sub(tP, root)} {
		s := mod(new(big.Int).Mul(mod(new(big.Int).Sub(r, one)), inv(tD)))
		y := new(big.Int).ModSqrt(s, tP)
		if y == nil {
			continue // this root is not a square
		}
		x := new(big.Int).ModSqrt(mod(new(big.Int).Neg(s)), tP)
		for _, yy := range []*big.Int{y, new(big.Int).Sub(tP, y)} {
			for _, xx := range []*big.Int{x, new(big.Int).Sub(tP, x)} {
				pts = append(pts, point{xx, yy})
			}
		}
	}
	seen := map[string]bool{}
	counts := map[int]int{}
	for _, q := range pts {
		if !q.onCurve() {
			t.Fatalf("derived torsion point (%v, %v) is not on the curve", q.x, q.y)
		}
		counts[q.order()]++
		seen[string(q.encode())] = true
	}
	if len(seen) != 8 || counts[1] != 1 || counts[2] != 1 || counts[4] != 2 || counts[8] != 4 {
		t.Fatalf("derived %d distinct torsion points with orders %v, want 8 (1 of order 1, 1 of 2, 2 of 4, 4 of 8)", len(seen), counts)
	}
	return pts
}

// TestSmallOrderTable: the table in pubkey.go is exactly the y values of the derived
// torsion points, and the curve constants match RFC 8032.
func TestSmallOrderTable(t *testing.T) {
	if fieldP.Cmp(tP) != 0 || curveD.Cmp(tD) != 0 {
		t.Fatalf("curve constants differ from RFC 8032: p=%v d=%v", fieldP, curveD)
	}
	want := map[[32]byte]bool{}
	for _, q := range torsionPoints(t) {
		want[[32]byte(encode(q.y, 0))] = true
	}
	got := map[[32]byte]bool{}
	for _, y := range smallOrderY {
		got[y] = true
	}
	if len(got) != len(smallOrderY) || len(want) != len(got) {
		t.Fatalf("table has %d distinct y values, derivation %d", len(got), len(want))
	}
	for y := range want {
		if !got[y] {
			t.Errorf("torsion y %x missing from the table", y)
		}
	}
}

func mustKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().(ed25519.PublicKey)
}

func hexKey(first byte, fill byte, last byte) []byte {
	b := bytes.Repeat([]byte{fill}, 32)
	b[0], b[31] = first, last
	return b
}

// offCurve returns the smallest y ≥ 2 whose canonical encoding is not a curve point.
func offCurve(t *testing.T) []byte {
	for y := int64(2); y < 1000; y++ {
		x2 := xSquared(big.NewInt(y))
		if new(big.Int).ModSqrt(x2, tP) == nil {
			return encode(big.NewInt(y), 0)
		}
	}
	t.Fatal("no off-curve y below 1000")
	return nil
}

// smallOnCurve returns the smallest y ≥ 2 that is on the curve, so that y+p < 2^255 is a
// non-canonical spelling of a valid point.
func smallOnCurve(t *testing.T) int64 {
	for y := int64(2); y < 19; y++ {
		if new(big.Int).ModSqrt(xSquared(big.NewInt(y)), tP) != nil {
			return y
		}
	}
	t.Skip("no valid point with y < 19")
	return 0
}

// xSquared is (y²-1)/(d·y²+1) mod p.
func xSquared(y *big.Int) *big.Int {
	y2 := mod(new(big.Int).Mul(y, y))
	u := mod(new(big.Int).Sub(y2, big.NewInt(1)))
	v := mod(new(big.Int).Add(mod(new(big.Int).Mul(tD, y2)), big.NewInt(1)))
	return mod(new(big.Int).Mul(u, inv(v)))
}

func TestCheckPublicKey(t *testing.T) {
	good := smallOnCurve(t)
	// The largest y that is neither p-1 (a torsion y) nor non-canonical: accepted or refused
	// exactly as the curve equation says.
	top := new(big.Int).Sub(tP, big.NewInt(2))
	var topWant error
	if new(big.Int).ModSqrt(xSquared(top), tP) == nil {
		topWant = errKeyNotOnCurve
	}
	type kase struct {
		name string
		key  []byte
		want error // nil: accepted
	}
	cases := []kase{
		{"identity 01 00…00", encode(big.NewInt(1), 0), errKeySmallOrder},
		{"identity with the sign bit (x = -0)", encode(big.NewInt(1), 1), errKeySmallOrder},
		{"identity as y = p+1", hexKey(0xee, 0xff, 0x7f), errKeyNonCanonical},
		{"identity as y = p+1 with the sign bit", hexKey(0xee, 0xff, 0xff), errKeyNonCanonical},
		{"order 2 (0, -1)", encode(new(big.Int).Sub(tP, big.NewInt(1)), 0), errKeySmallOrder},
		{"order 2 with the sign bit", encode(new(big.Int).Sub(tP, big.NewInt(1)), 1), errKeySmallOrder},
		{"order 4, y = 0", encode(big.NewInt(0), 0), errKeySmallOrder},
		{"order 4, y = 0, other x", encode(big.NewInt(0), 1), errKeySmallOrder},
		{"y = p (the order-4 y = 0 again)", hexKey(0xed, 0xff, 0x7f), errKeyNonCanonical},
		{"y = p with the sign bit", hexKey(0xed, 0xff, 0xff), errKeyNonCanonical},
		{"y = 2^255-1", hexKey(0xff, 0xff, 0x7f), errKeyNonCanonical},
		{"all ones", hexKey(0xff, 0xff, 0xff), errKeyNonCanonical},
		{fmt.Sprintf("y = p+%d, a valid point spelled non-canonically", good), encode(new(big.Int).Add(tP, big.NewInt(good)), 0), errKeyNonCanonical},
		{fmt.Sprintf("y = %d, the same point canonically", good), encode(big.NewInt(good), 0), nil},
		{"y = p-2", encode(top, 0), topWant},
		{"off the curve", offCurve(t), errKeyNotOnCurve},
		{"off the curve with the sign bit", func() []byte { b := offCurve(t); b[31] |= 0x80; return b }(), errKeyNotOnCurve},
		{"empty", []byte{}, errKeySize},
		{"nil", nil, errKeySize},
		{"31 bytes", mustKey(t)[:31], errKeySize},
		{"33 bytes", append(bytes.Clone(mustKey(t)), 0), errKeySize},
		{"random key", mustKey(t), nil},
		{"another random key", mustKey(t), nil},
	}
	for i, q := range torsionPoints(t) {
		enc := q.encode()
		flipped := bytes.Clone(enc)
		flipped[31] ^= 0x80
		cases = append(cases,
			kase{fmt.Sprintf("torsion point %d (order %d)", i, q.order()), enc, errKeySmallOrder},
			kase{fmt.Sprintf("torsion point %d, sign bit flipped", i), flipped, errKeySmallOrder})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 2 { // the second call may be answered by the memo
				err := CheckPublicKey(c.key)
				if c.want == nil {
					if err != nil {
						t.Fatalf("refused a valid key: %v", err)
					}
					continue
				}
				if !errors.Is(err, c.want) || !errors.Is(err, ErrBadKey) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			}
			if c.key == nil || len(c.key) != 32 {
				return
			}
			_, err := ParsePublicKeyPEM(PublicKeyPEM(c.key))
			if (err == nil) != (c.want == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("ParsePublicKeyPEM: %v, want %v", err, c.want)
			}
		})
	}
}

// forgedSignature is R = the identity point, S = 0.
func forgedSignature() []byte {
	sig := make([]byte, 64)
	sig[0] = 1
	return sig
}

// TestSmallOrderKeysForge shows why the keys are refused: under the identity key (in every
// spelling crypto/ed25519 accepts) the signature R = identity, S = 0 verifies for every
// message, and under each other torsion point for some messages (those whose challenge k
// is a multiple of the point's order). A generated key admits no such forgery.
func TestSmallOrderKeysForge(t *testing.T) {
	sig := forgedSignature()
	identityKeys := map[string][]byte{
		"01 00…00":        encode(big.NewInt(1), 0),
		"x = -0":          encode(big.NewInt(1), 1),
		"y = p+1":         hexKey(0xee, 0xff, 0x7f),
		"y = p+1, x = -0": hexKey(0xee, 0xff, 0xff),
	}
	for name, key := range identityKeys {
		t.Run("identity "+name, func(t *testing.T) {
			for i := range 32 {
				msg := fmt.Appendf(nil, "any message %d", i)
				if !ed25519.Verify(key, msg, sig) {
					t.Fatalf("the forged signature did not verify for %q", msg)
				}
			}
			if err := CheckPublicKey(key); err == nil {
				t.Fatal("CheckPublicKey accepted it")
			}
		})
	}
	for i, q := range torsionPoints(t) {
		key := q.encode()
		t.Run(fmt.Sprintf("torsion point %d of order %d", i, q.order()), func(t *testing.T) {
			forged := 0
			for n := range 256 {
				if ed25519.Verify(key, fmt.Appendf(nil, "message %d", n), sig) {
					forged++
				}
			}
			if forged == 0 {
				t.Fatal("no message forged in 256 tries")
			}
			if err := CheckPublicKey(key); !errors.Is(err, errKeySmallOrder) {
				t.Fatalf("CheckPublicKey: %v", err)
			}
		})
	}
	pub := mustKey(t)
	for n := range 256 {
		if ed25519.Verify(pub, fmt.Appendf(nil, "message %d", n), sig) {
			t.Fatal("the forged signature verified under a generated key")
		}
	}
}

// stdlibDecodes reports whether crypto/ed25519 decodes key as a point. It asks for an
// Ed25519ph verification of a message of the wrong length, which fails after the key is
// decoded: with "bad public key" when the key does not decode, otherwise with another error.
func stdlibDecodes(t *testing.T, key []byte) bool {
	t.Helper()
	err := ed25519.VerifyWithOptions(key, nil, make([]byte, 64), &ed25519.Options{Hash: crypto.SHA512})
	if err == nil {
		t.Fatal("VerifyWithOptions accepted an empty Ed25519ph digest")
	}
	return !strings.Contains(err.Error(), "bad public key")
}

// TestOnCurveMatchesStdlib: for canonical encodings that are not torsion points,
// CheckPublicKey accepts exactly what crypto/ed25519 decodes, and what math/big finds a
// square root for.
func TestOnCurveMatchesStdlib(t *testing.T) {
	if !stdlibDecodes(t, mustKey(t)) || stdlibDecodes(t, offCurve(t)) {
		t.Fatal("the crypto/ed25519 oracle no longer tells valid from invalid keys (its error text changed?)")
	}
	seed := sha512.Sum512([]byte("trusthandoff on-curve differential"))
	var buf [32]byte
	valid := 0
	for i := range 2000 {
		h := sha512.Sum512(binary.BigEndian.AppendUint64(seed[:], uint64(i)))
		copy(buf[:], h[:32])
		buf[31] &= 0x7f
		if i%2 == 1 {
			buf[31] |= 0x80
		}
		key := bytes.Clone(buf[:])
		y := new(big.Int).SetBytes(encodeBE(key))
		if y.Cmp(tP) >= 0 {
			continue
		}
		bigSays := new(big.Int).ModSqrt(xSquared(y), tP) != nil
		err := CheckPublicKey(key)
		if (err == nil) != bigSays || bigSays != stdlibDecodes(t, key) {
			t.Fatalf("key %x: CheckPublicKey %v, math/big on curve %v, crypto/ed25519 decodes %v", key, err, bigSays, stdlibDecodes(t, key))
		}
		if err == nil {
			valid++
		}
	}
	if valid < 800 || valid > 1200 {
		t.Fatalf("%d of 2000 random encodings were points; about half should be", valid)
	}
}

// encodeBE returns the big-endian y of an encoding, sign bit cleared.
func encodeBE(key []byte) []byte {
	be := make([]byte, 32)
	for i := range be {
		be[i] = key[31-i]
	}
	be[0] &= 0x7f
	return be
}

// TestCheckPublicKeyConcurrent exercises the memo under the race detector: many goroutines
// check overlapping keys, valid and not, and every answer is the one a fresh check gives.
func TestCheckPublicKeyConcurrent(t *testing.T) {
	keys := make([][]byte, 64)
	for i := range keys {
		if i%4 == 3 {
			keys[i] = offCurve(t)
		} else {
			keys[i] = mustKey(t)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 200 {
				i := (n*7 + g) % len(keys)
				if err := CheckPublicKey(keys[i]); (err == nil) != (i%4 != 3) {
					errs <- fmt.Errorf("key %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzCheckPublicKey: CheckPublicKey agrees with the math/big model of the rules for any
// 32 bytes, and never panics on any input.
func FuzzCheckPublicKey(f *testing.F) {
	f.Add(encode(big.NewInt(1), 0))
	f.Add(hexKey(0xee, 0xff, 0x7f))
	f.Add([]byte(mustKeyF(f)))
	f.Add([]byte{1, 2, 3})
	torsion := map[string]bool{}
	for _, y := range smallOrderY {
		torsion[string(y[:])] = true
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		err := CheckPublicKey(key)
		if len(key) != 32 {
			if !errors.Is(err, errKeySize) {
				t.Fatalf("%d bytes: %v", len(key), err)
			}
			return
		}
		y := new(big.Int).SetBytes(encodeBE(key))
		var want error
		switch {
		case y.Cmp(tP) >= 0:
			want = errKeyNonCanonical
		case torsion[string(encode(y, 0))]:
			want = errKeySmallOrder
		case new(big.Int).ModSqrt(xSquared(y), tP) == nil:
			want = errKeyNotOnCurve
		}
		if err != want {
			t.Fatalf("%x: got %v, want %v", key, err, want)
		}
	})
}

func mustKeyF(f *testing.F) ed25519.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	return pub
}
