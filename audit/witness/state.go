package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

// State directory layout:
//
//	DIR/lock                      held (flock) by the one Server using DIR
//	DIR/logs/HEX.checkpoint       the latest cosigned checkpoint note of one log, as the
//	                              log signed it; HEX = lowercase hex SHA-256 of the origin
//	DIR/evidence/HEX-NOTEHASH.txt validly signed requests refused as inconsistent (a fork
//	                              or a rollback by the log), kept as proof of misbehaviour
const (
	logsDir     = "logs"
	evidenceDir = "evidence"
	// maxEvidence bounds the evidence files kept: only a log's own key can produce one,
	// but a misbehaving log must not fill the disk.
	maxEvidence = 1024
)

// ErrState is wrapped by errors reading or writing the witness state. A witness with an
// unreadable or corrupt state for a log refuses to cosign for that log (fail closed)
// rather than start over from size 0.
var ErrState = errors.New("witness: state unavailable")

// ErrLocked is returned by NewServer when another process is using the state directory.
var ErrLocked = errors.New("witness: state directory is in use by another process")

// store keeps the latest cosigned checkpoint per origin in files.
type store struct {
	dir      string
	lock     *os.File
	evidence int // files in DIR/evidence
}

func openStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, logsDir), filepath.Join(dir, evidenceDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrState, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := filelock.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, filelock.ErrLocked) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, evidenceDir))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	return &store{dir: dir, lock: f, evidence: len(ents)}, nil
}

func (s *store) close() error { return s.lock.Close() }

func originFile(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

func (s *store) path(origin string) string {
	return filepath.Join(s.dir, logsDir, originFile(origin)+".checkpoint")
}

// latest returns the latest cosigned checkpoint of origin, or the zero checkpoint (size
// 0) when the witness never cosigned one.
func (s *store) latest(origin string) (checkpoint, error) {
	data, err := os.ReadFile(s.path(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{Origin: origin}, nil
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	text, _, err := splitNote(data)
	if err != nil {
		return checkpoint{}, fmt.Errorf("%w: %s is corrupt", ErrState, s.path(origin))
	}
	c, err := parseCheckpoint(text)
	if err != nil || c.Origin != origin {
		return checkpoint{}, fmt.Errorf("%w: %s is corrupt", ErrState, s.path(origin))
	}
	return c, nil
}

// save durably replaces the latest checkpoint of origin with signedNote: written to a
// temporary file, synced, renamed over the old one, and the directory synced, so a crash
// leaves either the old or the new state, never a mix or nothing.
func (s *store) save(origin string, signedNote []byte) error {
	if err := atomicfile.Write(s.path(origin), signedNote, 0o600); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	return nil
}

// keepEvidence stores a refused, validly signed request. Best effort: the refusal stands
// whether or not it is kept.
func (s *store) keepEvidence(origin string, body []byte) {
	if s.evidence >= maxEvidence {
		return
	}
	h := sha256.Sum256(body)
	name := fmt.Sprintf("%s-%s.txt", originFile(origin)[:16], hex.EncodeToString(h[:8]))
	f, err := os.OpenFile(filepath.Join(s.dir, evidenceDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	s.evidence++
	if _, err := f.Write(body); err == nil {
		_ = f.Sync() // best effort, see above
	}
}
