package witness

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func TestCosignatureRoundTrip(t *testing.T) {
	c := fixedCosigner(t, "witness.example/w1", 7, t0)
	v, err := NewCosignatureVerifier(c.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != c.Name() || v.KeyHash() != c.KeyHash() || v.String() != c.VerifierKey() {
		t.Fatalf("verifier %s does not match cosigner %s", v, c.VerifierKey())
	}
	text := "example.com/log\n5\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextension\n"
	msg := signNote(t, text, c)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	at, ok := CosignedAt(n, v)
	if !ok || !at.Equal(t0) {
		t.Fatalf("CosignedAt = %v, %v; want %v", at, ok, t0)
	}
	// The signature is over the cosignature/v1 message, not the bare note text: a plain
	// Ed25519 note verifier with the same key must not accept it.
	raw, _ := base64.StdEncoding.DecodeString(n.Sigs[0].Base64)
	if ed25519.Verify(c.PublicKey(), []byte(text), raw[12:]) {
		t.Fatal("cosignature verifies over the bare text: no domain separation")
	}
	if !ed25519.Verify(c.PublicKey(), signedMessage(uint64(t0.Unix()), []byte(text)), raw[12:]) {
		t.Fatal("cosignature does not verify over cosignature/v1 || time || text")
	}
	for _, tamper := range []struct{ name, old, new string }{
		{"extension", "extension", "extensioN"},
		{"size", "\n5\n", "\n6\n"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			bad := strings.Replace(string(msg), tamper.old, tamper.new, 1)
			if _, err := note.Open([]byte(bad), note.VerifierList(v)); err == nil {
				t.Fatal("tampered note verified")
			}
		})
	}
}

// TestCosignatureVector pins the encoding: a fixed key and time give fixed bytes. The
// expected values were computed separately, straight from the C2SP tlog-cosignature text,
// with another Ed25519 implementation (Python's cryptography package).
func TestCosignatureVector(t *testing.T) {
	c := fixedCosigner(t, "witness.example/w1", 1, time.Unix(1679315147, 0))
	const wantVkey = "witness.example/w1+0ad7d35e+BIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
	if c.VerifierKey() != wantVkey {
		t.Fatalf("vkey %q, want %q", c.VerifierKey(), wantVkey)
	}
	sig, err := c.Sign([]byte("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 72 {
		t.Fatalf("signature of %d bytes, want 72", len(sig))
	}
	// 8-byte big-endian 1679315147, then the (deterministic) Ed25519 signature.
	const want = "AAAAAGQYUMvSXSkXBOT0zKS9bQBZDtqPfCVA492Qf9TpL6lrflx5pJy4TNLAp8h4nuLgXGnyEf5qt2vvSrAQGEIDj8WySbAC"
	if got := base64.StdEncoding.EncodeToString(sig); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestNewCosignatureVerifierRejects(t *testing.T) {
	c := fixedCosigner(t, "w.example", 3, t0)
	good := c.VerifierKey()
	name, rest, _ := strings.Cut(good, "+")
	hash, b64, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	ed := append([]byte{0x01}, raw[1:]...)
	_, logVkey, _ := note.GenerateKey(nil, "w.example")
	cases := map[string]string{
		"empty":          "",
		"no plus":        "w.example",
		"one plus":       name + "+" + hash,
		"bad hash hex":   name + "+zzzzzzzz+" + b64,
		"short hash":     name + "+abc+" + b64,
		"wrong hash":     name + "+00000000+" + b64,
		"other name":     "x.example+" + hash + "+" + b64,
		"bad base64":     name + "+" + hash + "+!!!!",
		"ed25519 type":   name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(ed),
		"note log key":   logVkey,
		"short key":      name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(raw[:20]),
		"space in name":  "w example+" + hash + "+" + b64,
		"trailing bytes": good + "AA==",
	}
	for n, vk := range cases {
		t.Run(n, func(t *testing.T) {
			if _, err := NewCosignatureVerifier(vk); !errors.Is(err, ErrBadKey) {
				t.Fatalf("NewCosignatureVerifier(%q) = %v, want ErrBadKey", vk, err)
			}
		})
	}
}

func TestVerifierRejectsBadSignatures(t *testing.T) {
	c := fixedCosigner(t, "w.example", 3, t0)
	v, _ := NewCosignatureVerifier(c.VerifierKey())
	msg := []byte("o\n1\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	sig, _ := c.Sign(msg)
	future := append([]byte{}, sig...)
	future[0] = 0x80 // timestamp over 2^63-1
	cases := map[string][]byte{
		"short":       sig[:71],
		"long":        append(append([]byte{}, sig...), 0),
		"time edited": func() []byte { s := append([]byte{}, sig...); s[7]++; return s }(),
		"huge time":   future,
		"empty":       nil,
	}
	for n, s := range cases {
		t.Run(n, func(t *testing.T) {
			if v.Verify(msg, s) {
				t.Fatal("bad signature verified")
			}
		})
	}
	if !v.Verify(msg, sig) {
		t.Fatal("good signature refused")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "witness.key")
	vkey, err := WriteKeyFile(path, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKeyFile(path, "witness.example/w1"); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing key")
	}
	c, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifierKey() != vkey || c.Name() != "witness.example/w1" {
		t.Fatalf("loaded %s, want %s", c.VerifierKey(), vkey)
	}
	data, _ := os.ReadFile(path)
	if _, err := ParseKey(string(data)); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyFile(path); !errors.Is(err, identity.ErrUnsafePermissions) {
			t.Fatalf("LoadKeyFile of a 0644 key = %v, want ErrUnsafePermissions", err)
		}
	}
	secret := strings.TrimSpace(string(data))
	bad := map[string]string{
		"not a key":  "hello",
		"wrong hash": func() string { p := strings.SplitN(secret, "+", 5); p[3] = "00000000"; return strings.Join(p, "+") }(),
		"bad hash":   func() string { p := strings.SplitN(secret, "+", 5); p[3] = "0000000z"; return strings.Join(p, "+") }(),
		"ed25519":    mustNoteSkey(t),
		"truncated":  secret[:len(secret)-4],
	}
	for n, s := range bad {
		t.Run(n, func(t *testing.T) {
			_, err := ParseKey(s)
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParseKey = %v, want ErrBadKey", err)
			}
			if strings.Contains(err.Error(), secret[len(secret)-20:]) {
				t.Fatal("error contains key material")
			}
		})
	}
}

func mustNoteSkey(t *testing.T) string {
	skey, _, err := note.GenerateKey(nil, "w.example")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// TestKeyEncodingRoundTrip: many random keys (their base64 often holds '+' and '/')
// parse back to the same cosigner and verifier.
func TestKeyEncodingRoundTrip(t *testing.T) {
	for i := range 200 {
		skey, vkey, err := GenerateKey("witness.example/w")
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseKey(skey)
		if err != nil {
			t.Fatalf("key %d: ParseKey: %v", i, err)
		}
		v, err := NewCosignatureVerifier(vkey)
		if err != nil || c.VerifierKey() != vkey || v.String() != vkey {
			t.Fatalf("key %d: %v %s %s", i, err, c.VerifierKey(), vkey)
		}
	}
}

func TestNewCosignerRejectsBadNames(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytesOf(1, 32))
	for _, name := range []string{"", "a b", "a+b", "a\nb", "\xff"} {
		if _, err := NewCosigner(name, key); !errors.Is(err, ErrBadKey) {
			t.Errorf("NewCosigner(%q) = %v, want ErrBadKey", name, err)
		}
		if _, _, err := GenerateKey(name); !errors.Is(err, ErrBadKey) {
			t.Errorf("GenerateKey(%q) = %v, want ErrBadKey", name, err)
		}
	}
	if _, err := NewCosigner("ok", key[:10]); !errors.Is(err, ErrBadKey) {
		t.Error("short key accepted")
	}
}
