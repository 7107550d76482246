package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

// algCosignatureV1 is the signature type byte of Ed25519 cosignature/v1 keys
// (C2SP tlog-cosignature): it enters the key ID and the verifier key encoding.
const algCosignatureV1 = 0x04

// cosignatureSize is the size of a cosignature/v1 signature: an 8-byte big-endian POSIX
// timestamp followed by a 64-byte Ed25519 signature.
const cosignatureSize = 8 + ed25519.SignatureSize

// ErrBadKey is wrapped by errors for a malformed, wrongly typed or unsafely stored
// witness key.
var ErrBadKey = errors.New("witness: bad key")

// Cosigner signs checkpoints as a witness: each signature is a cosignature/v1
// timestamped_signature over "cosignature/v1\ntime T\n" followed by the checkpoint note
// text. It implements note.Signer, so note.Sign(&note.Note{Text: checkpoint}, c) yields a
// cosigned note.
type Cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

var _ note.Signer = (*Cosigner)(nil)

// CosignerOption configures NewCosigner.
type CosignerOption func(*Cosigner)

// WithClock makes the cosigner read the time from now instead of time.Now (the timestamp
// line of every cosignature).
func WithClock(now func() time.Time) CosignerOption {
	return func(c *Cosigner) { c.now = now }
}

// NewCosigner returns a cosigner named name (a note key name: non-empty, no spaces, no
// '+'; C2SP recommends a schema-less URL such as "witness.example/w1") signing with key.
func NewCosigner(name string, key ed25519.PrivateKey, opts ...CosignerOption) (*Cosigner, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: invalid key name %q", ErrBadKey, name)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: not an Ed25519 private key", ErrBadKey)
	}
	pub := key.Public().(ed25519.PublicKey)
	c := &Cosigner{name: name, hash: keyHash(name, pub), key: key, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Name returns the cosigner's key name.
func (c *Cosigner) Name() string { return c.name }

// KeyHash returns the cosigner's key ID, SHA-256(name || "\n" || 0x04 || public key)[:4].
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// PublicKey returns the cosigner's Ed25519 public key.
func (c *Cosigner) PublicKey() ed25519.PublicKey { return c.key.Public().(ed25519.PublicKey) }

// VerifierKey returns the cosigner's verifier key, "name+hash+base64(0x04 || public key)",
// the form NewCosignatureVerifier (and other witness clients) accept.
func (c *Cosigner) VerifierKey() string { return vkey(c.name, c.PublicKey()) }

// Sign returns the cosignature/v1 signature of the checkpoint note text msg, timestamped
// with the cosigner's clock (whole seconds).
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	ts := c.now().Unix()
	if ts < 0 {
		return nil, errors.New("witness: clock before 1970")
	}
	sig := make([]byte, 8, cosignatureSize)
	binary.BigEndian.PutUint64(sig, uint64(ts))
	return append(sig, ed25519.Sign(c.key, signedMessage(uint64(ts), msg))...), nil
}

// signedMessage is the cosignature/v1 signed message for a checkpoint note text.
func signedMessage(ts uint64, text []byte) []byte {
	m := make([]byte, 0, 64+len(text))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, ts, 10)
	m = append(m, '\n')
	return append(m, text...)
}

// Verifier checks cosignature/v1 signatures by one witness key. It implements
// note.Verifier, so note.Open with it (in a note.VerifierList) accepts a checkpoint only
// with a valid cosignature by that witness.
type Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

var _ note.Verifier = (*Verifier)(nil)

// NewCosignatureVerifier parses a cosignature/v1 verifier key
// "name+hash+base64(0x04 || 32-byte Ed25519 public key)" (C2SP signed-note vkey with
// signature type 0x04), checking that hash is the key's ID.
func NewCosignatureVerifier(vkey string) (*Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexHash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(hexHash) != 8 {
		return nil, fmt.Errorf("%w: malformed verifier key", ErrBadKey)
	}
	h, err := strconv.ParseUint(hexHash, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed verifier key hash", ErrBadKey)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: malformed verifier key encoding", ErrBadKey)
	}
	if key[0] != algCosignatureV1 || len(key) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: not a cosignature/v1 Ed25519 key (type 0x%02x)", ErrBadKey, key[0])
	}
	pub := ed25519.PublicKey(key[1:])
	if uint32(h) != keyHash(name, pub) {
		return nil, fmt.Errorf("%w: verifier key hash does not match the key", ErrBadKey)
	}
	return &Verifier{name: name, hash: uint32(h), pub: pub}, nil
}

// Name returns the witness's key name.
func (v *Verifier) Name() string { return v.name }

// KeyHash returns the witness's key ID.
func (v *Verifier) KeyHash() uint32 { return v.hash }

// String returns the verifier key.
func (v *Verifier) String() string { return vkey(v.name, v.pub) }

// Verify reports whether sig is a valid cosignature/v1 signature of the checkpoint note
// text msg by this witness.
func (v *Verifier) Verify(msg, sig []byte) bool {
	ts, ok := cosignatureTime(sig)
	if !ok {
		return false
	}
	return ed25519.Verify(v.pub, signedMessage(ts, msg), sig[8:])
}

// cosignatureTime returns the timestamp of a cosignature/v1 signature, if it is one.
func cosignatureTime(sig []byte) (uint64, bool) {
	if len(sig) != cosignatureSize {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(sig)
	return ts, ts <= 1<<63-1
}

// CosignedAt returns the time of the cosignature by v on n, a note opened with v among its
// verifiers (so that n.Sigs holds only verified signatures), and whether there is one.
func CosignedAt(n *note.Note, v note.Verifier) (time.Time, bool) {
	for _, s := range n.Sigs {
		if s.Name != v.Name() || s.Hash != v.KeyHash() {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 4 {
			continue
		}
		if ts, ok := cosignatureTime(raw[4:]); ok {
			return time.Unix(int64(ts), 0).UTC(), true
		}
	}
	return time.Time{}, false
}

func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func vkey(name string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", name, keyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
}

// validName reports whether name is a valid note key name.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 &&
		!strings.Contains(name, "+")
}

// The private key file holds one line, "PRIVATE+KEY+name+hash+base64(0x04 || seed)": the
// signed-note private key encoding, with the cosignature/v1 type byte.
const skeyPrefix = "PRIVATE+KEY+"

// GenerateKey returns a new cosigner key named name: skey is the private key encoding that
// WriteKeyFile stores and ParseKey reads, vkey the verifier key to give to clients.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("%w: invalid key name %q", ErrBadKey, name)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	c, err := NewCosigner(name, priv)
	if err != nil {
		return "", "", err
	}
	return encodeKey(c), c.VerifierKey(), nil
}

func encodeKey(c *Cosigner) string {
	return fmt.Sprintf("%s%s+%08x+%s", skeyPrefix, c.name, c.hash,
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, c.key.Seed()...)))
}

// ParseKey parses a private key encoding made by GenerateKey (surrounding white space
// ignored) into a Cosigner. Errors never contain the key.
func ParseKey(skey string, opts ...CosignerOption) (*Cosigner, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), skeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: not a witness private key", ErrBadKey)
	}
	// Names hold no '+'; the base64 key may.
	name, rest, ok1 := strings.Cut(rest, "+")
	hexHash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || len(hexHash) != 8 {
		return nil, fmt.Errorf("%w: malformed private key", ErrBadKey)
	}
	h, err := strconv.ParseUint(hexHash, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed private key hash", ErrBadKey)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: not a cosignature/v1 Ed25519 private key", ErrBadKey)
	}
	c, err := NewCosigner(name, ed25519.NewKeyFromSeed(raw[1:]), opts...)
	if err != nil {
		return nil, err
	}
	if c.hash != uint32(h) {
		return nil, fmt.Errorf("%w: private key hash does not match the key", ErrBadKey)
	}
	return c, nil
}

// WriteKeyFile generates a key named name into a new file path (mode 0600, synced; an
// existing file is never overwritten) and returns its verifier key.
func WriteKeyFile(path, name string) (vkey string, err error) {
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s: %w; refusing to overwrite a key", path, fs.ErrExist)
		}
		return "", err
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return vkey, f.Close()
}

// LoadKeyFile reads a key file written by WriteKeyFile. Like identity.LoadPrivateKeyFile
// it refuses anything but a regular file and, on Unix, a file that group or others may
// access.
func LoadKeyFile(path string, opts ...CosignerOption) (*Cosigner, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (it is %04o; run chmod 600 %s)", path, identity.ErrUnsafePermissions, st.Mode().Perm(), path)
	}
	data, err := identity.ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseKey(string(data), opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
