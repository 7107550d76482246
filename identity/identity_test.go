package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceKeys checks PEM output and agent ids against every signer in the vectors.
func TestReferenceKeys(t *testing.T) {
	files, _ := filepath.Glob("../testdata/vectors/packets_v0.4.0/*.json")
	if len(files) == 0 {
		t.Fatal("no vectors")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var v struct {
			Signer struct {
				AgentID string `json:"agent_id"`
				Pub     string `json:"public_key_pem"`
				Priv    string `json:"private_key_pem"`
			} `json:"signer"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		priv, err := ParsePrivateKeyPEM([]byte(v.Signer.Priv))
		if err != nil {
			t.Fatal(err)
		}
		s := NewKeySigner(priv)
		if got := PublicKeyPEM(s.Public()); got != v.Signer.Pub {
			t.Fatalf("PEM differs:\n%s\n%s", got, v.Signer.Pub)
		}
		if got := AgentIDOf(s.Public()); got != v.Signer.AgentID {
			t.Fatalf("agent id %s, want %s", got, v.Signer.AgentID)
		}
		if string(PrivateKeyPEM(priv)) != v.Signer.Priv {
			t.Fatal("PKCS#8 PEM differs from the reference's")
		}
	}
}

func TestParsePublicKeyPEMStrict(t *testing.T) {
	k, _ := Generate()
	good := PublicKeyPEM(NewKeySigner(k).Public())
	if _, err := ParsePublicKeyPEM(good); err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, bad := range map[string]string{
		"no trailing newline": strings.TrimSuffix(good, "\n"),
		"CRLF":                strings.ReplaceAll(good, "\n", "\r\n"),
		"trailing data":       good + "x",
		"two blocks":          good + good,
		"wrong type":          strings.ReplaceAll(good, "PUBLIC KEY", "RSA PUBLIC KEY"),
		"ECDSA key":           string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"garbage":             "hello",
	} {
		if _, err := ParsePublicKeyPEM(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.pem")
	k, _ := Generate()
	if err := WritePrivateKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKeyFile(path, k); err == nil {
		t.Fatal("overwrote an existing key")
	}
	got, err := LoadPrivateKeyFile(path)
	if err != nil || !got.Equal(k) {
		t.Fatalf("load: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		_, err := LoadPrivateKeyFile(path)
		if !errors.Is(err, ErrUnsafePermissions) {
			t.Errorf("mode %o: %v", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE") {
			t.Error("error leaks key material")
		}
	}
	os.Chmod(path, 0o600)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, err := LoadPrivateKeyFile(bad); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key: %v", err)
	}
	if _, err := LoadPrivateKeyFile(dir); err == nil {
		t.Error("a directory loaded as a key")
	}
}

func TestFastPEMMatchesX509(t *testing.T) {
	for range 50 {
		k, _ := Generate()
		pub := NewKeySigner(k).Public()
		der, _ := x509.MarshalPKIXPublicKey(pub)
		want := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if got := PublicKeyPEM(pub); got != want {
			t.Fatalf("fast PEM differs:\n%s\n%s", got, want)
		}
		if AgentIDOf(pub) != AgentID(want) {
			t.Fatal("AgentIDOf differs from AgentID(PEM)")
		}
	}
}

// FuzzParseKeys: no input panics the PEM parsers; an accepted public key re-encodes to the
// same text.
func FuzzParseKeys(f *testing.F) {
	k, _ := Generate()
	f.Add([]byte(PublicKeyPEM(NewKeySigner(k).Public())))
	f.Add(PrivateKeyPEM(k))
	f.Fuzz(func(t *testing.T, data []byte) {
		if pub, err := ParsePublicKeyPEM(string(data)); err == nil && PublicKeyPEM(pub) != string(data) {
			t.Fatal("accepted a non-canonical public key PEM")
		}
		ParsePrivateKeyPEM(data)
	})
}
