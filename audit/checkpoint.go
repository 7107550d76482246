package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrCheckpoint is wrapped by ParseCheckpoint and OpenCheckpoint when a checkpoint is
// malformed or its signature does not verify, and by VerifyInclusion and
// VerifyConsistency when a proof does not match its checkpoints.
var ErrCheckpoint = errors.New("audit checkpoint invalid")

// ErrKey is wrapped by LoadKey and LoadOrCreateKey when a log key file is malformed or
// readable by others than its owner.
var ErrKey = errors.New("audit log key invalid")

// MaxCheckpointBytes bounds a signed checkpoint note (text and signature lines, witness
// cosignatures included) that OpenCheckpoint and the checkpoint file reader accept.
const MaxCheckpointBytes = 64 << 10

// maxOriginBytes bounds a checkpoint's origin line.
const maxOriginBytes = 256

// Checkpoint is a C2SP tlog-checkpoint: the log's origin (its name), the number of
// records, and the RFC 6962 Merkle tree hash of those records.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// Body returns the checkpoint's text, the body that is signed: the origin, the size in
// decimal and the standard base64 root hash, each on its own line.
func (c Checkpoint) Body() []byte {
	b := make([]byte, 0, len(c.Origin)+70)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	return append(b, '\n')
}

// ParseCheckpoint parses a checkpoint body (see Body). It is strict: exactly three
// lines, each ending with a newline; a non-empty UTF-8 origin of at most 256 bytes with no
// control characters; a decimal size without leading zeros no larger than 2^63-1; a
// canonical standard-base64 32-byte root. Extension lines are refused (this package
// writes none). Errors wrap ErrCheckpoint.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(body) > maxOriginBytes+80 {
		return c, fmt.Errorf("%w: body of %d bytes", ErrCheckpoint, len(body))
	}
	lines := bytes.SplitAfter(body, []byte("\n"))
	if len(lines) != 4 || len(lines[3]) != 0 {
		return c, fmt.Errorf("%w: want 3 newline-terminated lines (origin, size, root)", ErrCheckpoint)
	}
	origin := string(lines[0][:len(lines[0])-1])
	if err := checkOrigin(origin); err != nil {
		return c, err
	}
	size := string(lines[1][:len(lines[1])-1])
	n, err := strconv.ParseUint(size, 10, 64)
	if err != nil || n > math.MaxInt64 || strconv.FormatUint(n, 10) != size {
		return c, fmt.Errorf("%w: size line is not a canonical decimal tree size", ErrCheckpoint)
	}
	root := lines[2][:len(lines[2])-1]
	raw, err := base64.StdEncoding.DecodeString(string(root))
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != string(root) {
		return c, fmt.Errorf("%w: root line is not the canonical base64 of a 32-byte hash", ErrCheckpoint)
	}
	c.Origin, c.Size = origin, n
	copy(c.Root[:], raw)
	return c, nil
}

func checkOrigin(origin string) error {
	if origin == "" || len(origin) > maxOriginBytes || !utf8.ValidString(origin) {
		return fmt.Errorf("%w: origin must be 1 to %d bytes of UTF-8", ErrCheckpoint, maxOriginBytes)
	}
	for _, r := range origin {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: origin holds a control character", ErrCheckpoint)
		}
	}
	return nil
}

// SignCheckpoint returns c signed by s as a C2SP signed note: the body, a blank line and
// one signature line.
func SignCheckpoint(s note.Signer, c Checkpoint) ([]byte, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return nil, err
	}
	if c.Size > math.MaxInt64 {
		return nil, fmt.Errorf("%w: size %d", ErrCheckpoint, c.Size)
	}
	return note.Sign(&note.Note{Text: string(c.Body())}, s)
}

// OpenCheckpoint verifies a signed checkpoint note against the known verifiers and
// parses its body. It succeeds when at least one signature is by a known verifier and no
// signature by a known verifier is invalid; signatures by unknown keys (for instance
// cosignatures of witnesses the caller does not know) are listed in the note's
// UnverifiedSigs. A caller that requires a particular key (the log's) checks the note's
// Sigs, or uses HasSignature. Errors wrap ErrCheckpoint.
func OpenCheckpoint(msg []byte, v note.Verifiers) (Checkpoint, *note.Note, error) {
	if len(msg) > MaxCheckpointBytes {
		return Checkpoint{}, nil, fmt.Errorf("%w: note of %d bytes (limit %d)", ErrCheckpoint, len(msg), MaxCheckpointBytes)
	}
	n, err := note.Open(msg, v)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return c, n, nil
}

// HasSignature reports whether the opened note n carries a verified signature by v.
func HasSignature(n *note.Note, v note.Verifier) bool {
	if n == nil || v == nil {
		return false
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			return true
		}
	}
	return false
}

var errForeignSigner = fmt.Errorf("%w: the signer was not loaded by this package", ErrKey)

// logKey is a log's signer key, parsed from its note.GenerateKey text form, which also
// knows its verifier key.
type logKey struct {
	note.Signer
	vkey string
	ver  note.Verifier
}

// VerifierKey returns the note verifier key ("name+hash+base64key") of a signer returned
// by LoadKey or LoadOrCreateKey: what readers of the log's checkpoints pass as --log-key.
func VerifierKey(s note.Signer) (string, error) {
	k, ok := s.(*logKey)
	if !ok || k == nil {
		return "", errForeignSigner
	}
	return k.vkey, nil
}

// Verifier returns the note verifier of a signer returned by LoadKey or LoadOrCreateKey.
func Verifier(s note.Signer) (note.Verifier, error) {
	k, ok := s.(*logKey)
	if !ok || k == nil {
		return nil, errForeignSigner
	}
	return k.ver, nil
}

// parseKey parses a note signer key ("PRIVATE+KEY+name+hash+base64(0x01||seed)").
func parseKey(skey string) (*logKey, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	// "PRIVATE+KEY+" name "+" hash "+" key; a name holds no '+', a hash is 8 hex digits.
	rest := strings.TrimPrefix(skey, "PRIVATE+KEY+")
	_, rest, _ = strings.Cut(rest, "+")
	_, enc, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, fmt.Errorf("%w: not an Ed25519 note key", ErrKey)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("%w: key hash does not match the key", ErrKey)
	}
	return &logKey{Signer: s, vkey: vkey, ver: v}, nil
}

// modeBitsMeaningful: Windows has no Unix permission bits to check.
const modeBitsMeaningful = runtime.GOOS != "windows"

// LoadKey reads a log signer key (the note.GenerateKey text form, one line) from a file
// that only its owner may read or write (mode 0600 or stricter). Errors wrap ErrKey for a
// malformed or exposed key, fs.ErrNotExist when the file is missing, and ErrUnavailable
// when it cannot be read. Neither the key nor the file's content appears in an error.
func LoadKey(path string) (note.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit log key %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%w: log key: %w", ErrUnavailable, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: log key: %w", ErrUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKey, path)
	}
	if modeBitsMeaningful && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable or writable by others (mode %04o; run chmod 600 %s)", ErrKey, path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("%w: log key: %w", ErrUnavailable, err)
	}
	if len(data) > 4096 {
		return nil, fmt.Errorf("%w: %s is too long for a key", ErrKey, path)
	}
	k, err := parseKey(strings.TrimSuffix(string(data), "\n"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKey loads the log signer key at path (see LoadKey), or, when there is no
// file there, generates a new Ed25519 key named name, writes it with mode 0600 (never
// overwriting a file created meanwhile: then that one is loaded) and returns it. name is
// a note key name: non-empty, without spaces or '+'.
func LoadOrCreateKey(path, name string) (note.Signer, error) {
	s, err := LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, fmt.Errorf("%w: key name %q: %w", ErrKey, name, err)
	}
	// Written whole to a temporary file, then linked into place: a process that loses
	// the race to create the key never reads it half-written, and never overwrites it.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".logkey-*")
	if err != nil {
		return nil, fmt.Errorf("%w: creating log key: %w", ErrUnavailable, err)
	}
	defer os.Remove(tmp.Name())
	werr := tmp.Chmod(0o600)
	if werr == nil || !modeBitsMeaningful {
		_, werr = tmp.WriteString(skey + "\n")
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("%w: writing log key: %w", ErrUnavailable, werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKey(path)
		}
		return nil, fmt.Errorf("%w: creating log key: %w", ErrUnavailable, err)
	}
	syncDir(path)
	return parseKey(skey)
}

// DefaultKeyName returns a new name for a log key (and so the log's origin):
// "trusthandoff/audit/" and 16 random hex digits, unique so that two logs never share an
// origin. FileSink names the keys it creates so.
func DefaultKeyName() string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("trusthandoff/audit/%016x", binary.BigEndian.Uint64(b[:]))
}

// NewVerifiers returns the verifiers for the given note verifier keys
// ("name+hash+base64key"), for OpenCheckpoint. Errors wrap ErrKey.
func NewVerifiers(vkeys ...string) (note.Verifiers, error) {
	vs := make([]note.Verifier, 0, len(vkeys))
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%w: verifier key: %w", ErrKey, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}
