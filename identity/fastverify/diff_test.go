package fastverify

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// check feeds (pub, msg, sig) to crypto/ed25519 and to the precomputed verifier and fails
// unless they agree. It returns the standard library's answer.
func check(t testing.TB, pub, msg, sig []byte) bool {
	t.Helper()
	std := ed25519.Verify(pub, msg, sig)
	v, err := New(pub)
	if err != nil {
		// New refuses only keys that are not curve points; the standard library then
		// rejects every signature, and must indeed fail to decode the key.
		if std {
			t.Fatalf("New refused key %x that crypto/ed25519 accepts a signature under", pub)
		}
		if _, derr := new(edwards25519.Point).SetBytes(pub); derr == nil {
			t.Fatalf("New refused key %x, which crypto/ed25519 decodes: %v", pub, err)
		}
		return false
	}
	if fast := v.Verify(msg, sig); fast != std {
		t.Fatalf("disagreement: stdlib %v, precomputed %v\npub %x\nmsg %x\nsig %x", std, fast, pub, msg, sig)
	}
	return std
}

// torsion returns the eight points of the 8-torsion subgroup, T[i] = i·T8.
func torsion(t testing.TB) [8]*edwards25519.Point {
	t.Helper()
	enc, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	t8, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		t.Fatal(err)
	}
	var ts [8]*edwards25519.Point
	ts[0] = edwards25519.NewIdentityPoint()
	for i := 1; i < 8; i++ {
		ts[i] = new(edwards25519.Point).Add(ts[i-1], t8)
	}
	return ts
}

// scalarFrom derives a scalar deterministically from a label.
func scalarFrom(label string, i int) *edwards25519.Scalar {
	h := sha512.New()
	h.Write([]byte(label))
	binary.Write(h, binary.BigEndian, int64(i))
	s, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return s
}

// hram is H(R || A || msg) reduced mod L, over the encodings as given.
func hram(rEnc, aEnc, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(rEnc)
	h.Write(aEnc)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return k
}

// nonCanonical returns the other encodings of the point encoded canonically by enc: y+p
// when it fits in 255 bits, and the sign bit set on points with x = 0.
func nonCanonical(enc []byte) [][]byte {
	var out [][]byte
	y := new(big.Int).SetBytes(reverse(enc[:32]))
	sign := y.Bit(255)
	y.SetBit(y, 255, 0)
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	if yp := new(big.Int).Add(y, p); yp.BitLen() <= 255 {
		for _, s := range []uint{0, 1} {
			e := littleEndian(yp)
			e[31] |= byte(s << 7)
			out = append(out, e)
		}
	}
	// x = 0 exactly for y = ±1: the sign bit of "-0".
	if sign == 0 && (y.Cmp(big.NewInt(1)) == 0 || y.Cmp(new(big.Int).Sub(p, big.NewInt(1))) == 0) {
		e := append([]byte(nil), enc...)
		e[31] |= 0x80
		out = append(out, e)
	}
	return out
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func littleEndian(n *big.Int) []byte {
	b := make([]byte, 32)
	n.FillBytes(b)
	return reverse(b)
}

var order, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// withS returns sig with its S half replaced by the little-endian encoding of s.
func withS(sig []byte, s *big.Int) []byte {
	out := append([]byte(nil), sig[:32]...)
	b := make([]byte, 32)
	new(big.Int).Mod(s, new(big.Int).Lsh(big.NewInt(1), 256)).FillBytes(b)
	return append(out, reverse(b)...)
}

// hardCase is one input of the differential test.
type hardCase struct {
	name          string
	pub, msg, sig []byte
}

// hardCases builds the inputs on which a lax or cofactored verifier would differ from
// crypto/ed25519: keys with a torsion component or of small order, in canonical and
// non-canonical encodings; R with torsion components added, of small order, or encoded
// non-canonically; S ≥ L; all-zero and identity encodings; and, around valid signatures,
// every single-bit flip of key, signature and message.
func hardCases(t testing.TB) []hardCase {
	t.Helper()
	ts := torsion(t)
	var cases []hardCase
	add := func(name string, pub, msg, sig []byte) {
		cases = append(cases, hardCase{name, pub, msg, sig})
	}

	// Signatures by A = a·B + T[i] (a = 0: A of small order), with R = r·B + T[j] and
	// S = r + k·a: S·B − k·A = r·B − k·T[i], so the cofactorless equation holds exactly
	// when T[j] = −k·T[i]; a cofactored verifier accepts every one.
	for ai, a := range []*edwards25519.Scalar{edwards25519.NewScalar(), scalarFrom("a", 0), scalarFrom("a", 1)} {
		for i := range 8 {
			A := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), ts[i])
			aEncs := [][]byte{A.Bytes()}
			aEncs = append(aEncs, nonCanonical(A.Bytes())...)
			for ae, aEnc := range aEncs {
				for j := range 8 {
					for m := range 6 {
						msg := []byte{byte(ai), byte(i), byte(ae), byte(j), byte(m)}
						r := scalarFrom("r", ai*1000+i*100+j*10+m)
						if m == 5 {
							r = edwards25519.NewScalar() // R of small order
						}
						R := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), ts[j])
						rEncs := [][]byte{R.Bytes()}
						rEncs = append(rEncs, nonCanonical(R.Bytes())...)
						for re, rEnc := range rEncs {
							k := hram(rEnc, aEnc, msg)
							S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
							sig := append(append([]byte(nil), rEnc...), S.Bytes()...)
							name := "torsion"
							if re > 0 {
								name = "torsion/noncanonical-R"
							}
							if ae > 0 {
								name += "/noncanonical-A"
							}
							add(name, aEnc, msg, sig)
							// The same with S + L: never canonical.
							sBig := new(big.Int).SetBytes(reverse(S.Bytes()))
							add(name+"/S+L", aEnc, msg, withS(sig, new(big.Int).Add(sBig, order)))
						}
					}
				}
			}
		}
	}

	// Valid signatures, with S replaced by L, L+1, 2^253, 2^256−1, and every bit flipped.
	for n := range 4 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = byte(n)
		priv := ed25519.NewKeyFromSeed(seed)
		pub := []byte(priv.Public().(ed25519.PublicKey))
		msg := []byte("handoff " + string(rune('a'+n)))
		sig := ed25519.Sign(priv, msg)
		add("valid", pub, msg, sig)
		for _, s := range []*big.Int{order, new(big.Int).Add(order, big.NewInt(1)), new(big.Int).Lsh(big.NewInt(1), 253), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))} {
			add("S>=L", pub, msg, withS(sig, s))
		}
		add("S=0", pub, msg, withS(sig, big.NewInt(0)))
		for bit := range 8 * len(pub) {
			p := append([]byte(nil), pub...)
			p[bit/8] ^= 1 << (bit % 8)
			add("flip/key", p, msg, sig)
		}
		for bit := range 8 * len(sig) {
			s := append([]byte(nil), sig...)
			s[bit/8] ^= 1 << (bit % 8)
			add("flip/sig", pub, msg, s)
		}
		for bit := range 8 * len(msg) {
			m := append([]byte(nil), msg...)
			m[bit/8] ^= 1 << (bit % 8)
			add("flip/msg", pub, m, sig)
		}
		add("short-sig", pub, msg, sig[:63])
		add("long-sig", pub, msg, append(append([]byte(nil), sig...), 0))
		add("empty-sig", pub, msg, nil)
	}

	// All-zero, all-one and identity encodings in every position, and every y < 19 with
	// both sign bits and its y+p twin (the candidates for non-canonical keys and R).
	zero := make([]byte, 32)
	ident := edwards25519.NewIdentityPoint().Bytes()
	ones := make([]byte, 32)
	for i := range ones {
		ones[i] = 0xff
	}
	encs := [][]byte{zero, ident, ones}
	for y := range 19 {
		e := littleEndian(big.NewInt(int64(y)))
		encs = append(encs, e)
		e2 := append([]byte(nil), e...)
		e2[31] |= 0x80
		encs = append(encs, e2)
		encs = append(encs, nonCanonical(e)...)
	}
	for _, pub := range encs {
		for _, r := range encs {
			for _, s := range [][]byte{zero, ident, order.FillBytes(make([]byte, 32))} {
				add("encodings", pub, []byte("m"), append(append([]byte(nil), r...), s...))
			}
		}
	}
	return cases
}

// TestDifferential: the precomputed verifier and crypto/ed25519 agree on every hard case,
// and the hard cases include both accepted and rejected signatures of each torsion kind
// (so the agreement is not vacuous).
func TestDifferential(t *testing.T) {
	accepted := map[string]int{}
	rejected := map[string]int{}
	for _, c := range hardCases(t) {
		if check(t, c.pub, c.msg, c.sig) {
			accepted[c.name]++
		} else {
			rejected[c.name]++
		}
	}
	for _, name := range []string{"torsion", "torsion/noncanonical-A", "valid"} {
		if accepted[name] == 0 {
			t.Errorf("no accepted %s case: the generator is broken", name)
		}
	}
	for _, name := range []string{"torsion", "torsion/noncanonical-A"} {
		if rejected[name] == 0 {
			t.Errorf("no rejected %s case (a cofactored verifier would accept them)", name)
		}
	}
	for _, name := range []string{"torsion/noncanonical-R", "torsion/S+L", "S>=L", "flip/sig", "flip/msg", "short-sig", "long-sig", "empty-sig"} {
		if accepted[name] != 0 {
			t.Errorf("crypto/ed25519 accepted %d %s cases", accepted[name], name)
		}
	}
	t.Logf("accepted %v", accepted)
	t.Logf("rejected %v", rejected)
}

// TestRandomKeys: random keys, messages and signatures, valid and corrupted.
func TestRandomKeys(t *testing.T) {
	for i := range 200 {
		seed := sha512.Sum512([]byte{byte(i), byte(i >> 8)})
		priv := ed25519.NewKeyFromSeed(seed[:32])
		pub := priv.Public().(ed25519.PublicKey)
		msg := seed[32 : 32+i%32]
		sig := ed25519.Sign(priv, msg)
		if !check(t, pub, msg, sig) {
			t.Fatal("a valid signature was rejected")
		}
		sig[i%64] ^= byte(1 + i%255)
		if check(t, pub, msg, sig) {
			t.Fatal("a corrupted signature was accepted")
		}
	}
}

// TestNewRefuses: keys that are not 32 bytes or not curve points are refused, and no
// panics on any length.
func TestNewRefuses(t *testing.T) {
	for _, n := range []int{0, 1, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
	offCurve, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")
	if _, err := New(offCurve); err == nil {
		t.Error("New accepted y = 2, which is not on the curve")
	}
	check(t, offCurve, []byte("m"), make([]byte, 64))
}

// FuzzDifferential: any (key, message, signature) gets the same answer from both.
func FuzzDifferential(f *testing.F) {
	for i, c := range hardCases(f) {
		if i%7 == 0 || c.name == "valid" || c.name == "torsion" && i%2 == 0 {
			f.Add(c.pub, c.msg, c.sig)
		}
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519 panics on such keys; New refuses them (TestNewRefuses)
		}
		check(t, pub, msg, sig)
	})
}

// TestCofactoredDiffers: a cofactored verifier (curve25519-voi's FIPS 186-5 options, the
// equation of batch verification) accepts hard cases crypto/ed25519 rejects, so the
// cofactorless options are what makes the differential test pass, and batch verification
// would change decisions.
func TestCofactoredDiffers(t *testing.T) {
	cofactored := &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}
	extra := 0
	for _, c := range hardCases(t) {
		if len(c.sig) != 64 || c.name != "torsion" {
			continue
		}
		if voi.VerifyWithOptions(c.pub, c.msg, c.sig, cofactored) && !ed25519.Verify(c.pub, c.msg, c.sig) {
			extra++
		}
	}
	if extra == 0 {
		t.Fatal("the cofactored equation accepted nothing the standard library rejects")
	}
	t.Logf("cofactored verification accepts %d torsion signatures crypto/ed25519 rejects", extra)
}
