// Package identity holds agent keys: Ed25519 key generation, the reference's PEM formats
// (SPKI for public keys, PKCS#8 for private keys), agent ids, key files with safe
// permissions, and the Signer interface through which keys held elsewhere sign.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrBadKey is wrapped by every key parsing error.
var ErrBadKey = errors.New("invalid key")

// Signer signs messages with an Ed25519 key that may live outside the process
// (a signing service, a KMS). Sign must return a 64-byte Ed25519 signature of msg.
type Signer interface {
	Public() ed25519.PublicKey
	Sign(msg []byte) ([]byte, error)
}

// KeySigner is a Signer over an in-memory private key.
type KeySigner struct{ key ed25519.PrivateKey }

// NewKeySigner returns a Signer for key.
func NewKeySigner(key ed25519.PrivateKey) *KeySigner { return &KeySigner{key: key} }

// Public returns the public half of the key.
func (s *KeySigner) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign signs msg with pure Ed25519.
func (s *KeySigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// Generate returns a new Ed25519 private key from crypto/rand.
func Generate() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// PublicKeyPEM returns the SPKI PEM text of pub exactly as the reference (Python
// cryptography) writes it, trailing newline included. Agent ids hash this text.
func PublicKeyPEM(pub ed25519.PublicKey) string {
	if len(pub) == ed25519.PublicKeySize {
		return string(appendPublicKeyPEM(make([]byte, 0, pemLen), pub))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("identity: marshal ed25519 public key: " + err.Error()) // unreachable for a 32-byte key
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParsePublicKeyPEM parses an Ed25519 SPKI PEM. The text must be in the canonical form
// PublicKeyPEM produces: the agent id is a hash of this text, so two spellings of one
// key would be two identities. The key must pass CheckPublicKey: small-order,
// non-canonical and off-curve keys are refused. Every error wraps ErrBadKey.
func ParsePublicKeyPEM(text string) (ed25519.PublicKey, error) {
	if pub, ok := parseCanonicalPEM(text); ok {
		if err := CheckPublicKey(pub); err != nil {
			return nil, err
		}
		return pub, nil
	}
	// Not the canonical layout: parse it in full for a precise error message.
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, fmt.Errorf("%w: public key is not PEM", ErrBadKey)
	}
	if block.Type != "PUBLIC KEY" || len(block.Headers) != 0 || len(rest) != 0 {
		return nil, fmt.Errorf("%w: expected one PEM block of type PUBLIC KEY", ErrBadKey)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrBadKey, err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key is %T, only Ed25519 is supported", ErrBadKey, key)
	}
	if PublicKeyPEM(pub) != text {
		return nil, fmt.Errorf("%w: public key PEM is not in canonical form", ErrBadKey)
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// parseCanonicalPEM decodes text when it is exactly what PublicKeyPEM writes for some key,
// without the x509 parser; anything else is left to the full parse.
func parseCanonicalPEM(text string) (ed25519.PublicKey, bool) {
	if len(text) != pemLen || text[:len(pemHeader)] != pemHeader || text[pemLen-len(pemFooter):] != pemFooter {
		return nil, false
	}
	body := text[len(pemHeader) : pemLen-len(pemFooter)]
	var der [45]byte
	n, err := base64.StdEncoding.Strict().Decode(der[:], []byte(body))
	if err != nil || n != len(spkiPrefix)+ed25519.PublicKeySize || [12]byte(der[:12]) != spkiPrefix {
		return nil, false
	}
	var enc [60]byte
	base64.StdEncoding.Encode(enc[:], der[:n])
	if string(enc[:]) != body {
		return nil, false
	}
	return ed25519.PublicKey(bytes.Clone(der[12:n])), true
}

// AgentID derives the reference's agent id from SPKI PEM text:
// "agent:" + base64std(sha256(pem))[:16].
func AgentID(publicKeyPEM string) string {
	sum := sha256.Sum256([]byte(publicKeyPEM))
	return "agent:" + base64.StdEncoding.EncodeToString(sum[:])[:16]
}

// AgentIDOf is AgentID(PublicKeyPEM(pub)), without building the PEM string on the heap.
func AgentIDOf(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		return AgentID(PublicKeyPEM(pub))
	}
	var buf [pemLen]byte
	sum := sha256.Sum256(appendPublicKeyPEM(buf[:0], pub))
	var id [44]byte
	base64.StdEncoding.Encode(id[:], sum[:])
	return "agent:" + string(id[:16])
}

// An Ed25519 SPKI is a fixed 12-byte DER header and the 32-byte key (RFC 8410), so its
// PEM is fixed-size; writing it directly keeps agent ids off the x509 path.
const (
	pemHeader = "-----BEGIN PUBLIC KEY-----\n"
	pemFooter = "\n-----END PUBLIC KEY-----\n"
	pemLen    = len(pemHeader) + 60 + len(pemFooter)
)

var spkiPrefix = [12]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}

func appendPublicKeyPEM(dst []byte, pub ed25519.PublicKey) []byte {
	var der [44]byte
	copy(der[:12], spkiPrefix[:])
	copy(der[12:], pub)
	dst = append(dst, pemHeader...)
	dst = base64.StdEncoding.AppendEncode(dst, der[:])
	return append(dst, pemFooter...)
}

// Fingerprint is sha256 of the raw 32-byte public key (the attestation key fingerprint and
// the replay key namespace).
func Fingerprint(pub ed25519.PublicKey) [32]byte { return sha256.Sum256(pub) }

// PrivateKeyPEM returns the PKCS#8 PEM of key.
func PrivateKeyPEM(key ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("identity: marshal ed25519 private key: " + err.Error()) // unreachable
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ParsePrivateKeyPEM parses a PKCS#8 PEM Ed25519 private key. Errors never include key material.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: expected one PEM block of type PRIVATE KEY (PKCS#8)", ErrBadKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: private key is not valid PKCS#8", ErrBadKey)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is not Ed25519", ErrBadKey)
	}
	return priv, nil
}

// ErrUnsafePermissions is returned when a private key file is readable by others.
var ErrUnsafePermissions = errors.New("private key file is accessible by group or others (want mode 0600)")

// LoadPrivateKeyFile reads a PKCS#8 PEM key file, refusing files whose mode grants any
// access to group or others (on Unix; Windows has no such mode bits, and its ACLs are not
// checked: keep key files in a directory only their owner can read), and anything but a regular file (see ReadKeyFile: a FIFO or a
// device is refused without blocking).
func LoadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	f, st, err := openKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if modeBitsMeaningful && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (it is %04o; run chmod 600 %s)", path, ErrUnsafePermissions, st.Mode().Perm(), path)
	}
	data, err := readKeyFile(f, path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// WritePrivateKeyFile writes key as PKCS#8 PEM to a new file with mode 0600. It refuses
// to overwrite an existing file, and syncs before returning.
func WritePrivateKeyFile(path string, key ed25519.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite a key", path)
		}
		return err
	}
	if _, err := f.Write(PrivateKeyPEM(key)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Verify reports whether sig is a valid Ed25519 signature of msg by pub, with the exact
// semantics of crypto/ed25519.Verify.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}
