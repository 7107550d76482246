package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// CheckpointInterval is the most often a FileSink rewrites its log's checkpoint while
// records arrive; a synced record is covered by a checkpoint at most this long after.
const CheckpointInterval = time.Second

// clock is the sink's time source, injected by tests.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) stopper
}

type stopper interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                              { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// ReadCheckpointFile reads a signed checkpoint note from path, bounded by
// MaxCheckpointBytes. A missing file is an error wrapping fs.ErrNotExist; any other
// failure wraps ErrUnavailable, and a file too large wraps ErrCheckpoint.
func ReadCheckpointFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checkpoint %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCheckpointBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	if len(data) > MaxCheckpointBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCheckpoint, path, MaxCheckpointBytes)
	}
	return data, nil
}

// UpdateCheckpointFile replaces the checkpoint of the log at logPath (CheckpointPath)
// under the log's lock, so that no writer of the log refreshes it meanwhile: update gets
// the current note (nil when there is none) and returns the new one, or nil to leave the
// file as it is. The new note is written atomically (a temporary file, synced, renamed
// over the old). This is how cosignatures are added to a log's checkpoint. Errors from
// update are returned as they are; others wrap ErrUnavailable.
func UpdateCheckpointFile(logPath string, update func(current []byte) ([]byte, error)) error {
	f, err := openActiveLocked(logPath, DefaultLockWait)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: %s is missing (an interrupted rotation: opening the log for writing creates it)", ErrUnavailable, logPath)
	}
	defer f.Close()
	defer unlock(f)
	cpPath := CheckpointPath(logPath)
	cur, err := ReadCheckpointFile(cpPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	next, err := update(cur)
	if err != nil || next == nil {
		return err
	}
	return writeFileAtomic(cpPath, next)
}

// writeFileAtomic replaces path with data: a temporary file beside it, synced, renamed
// over it, and the directory synced. The caller holds the log's lock, so the temporary
// name is its own.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	syncDir(path)
	return nil
}

// syncDir syncs the directory holding path, so a new or renamed entry survives a crash.
// Platforms that cannot sync a directory are not an error.
func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
}

// readCheckpoint reads the sink's stored checkpoint, which must be signed by the log key
// and name the sink's origin.
func (s *FileSink) readCheckpoint() (Checkpoint, bool, error) {
	data, err := ReadCheckpointFile(s.cpPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		if errors.Is(err, ErrCheckpoint) {
			return Checkpoint{}, false, broken(0, "%s: %v", filepath.Base(s.cpPath), err)
		}
		return Checkpoint{}, false, err
	}
	c, n, err := OpenCheckpoint(data, note.VerifierList(s.verifier))
	if err != nil || !HasSignature(n, s.verifier) {
		return Checkpoint{}, false, broken(0, "%s is not a checkpoint signed by the log key %s", filepath.Base(s.cpPath), s.verifier.Name())
	}
	if c.Origin != s.origin {
		return Checkpoint{}, false, broken(0, "%s names origin %q, the log is %q", filepath.Base(s.cpPath), c.Origin, s.origin)
	}
	return c, true, nil
}

// writeCheckpoint writes the checkpoint of the records verified so far, unless the stored
// one already covers them. The caller holds ioMu and the file lock and has caught up.
func (s *FileSink) writeCheckpoint() error {
	err := s.writeCheckpointErr()
	s.cpErr = err
	return err
}

func (s *FileSink) writeCheckpointErr() error {
	root := s.tree.root()
	cur, found, err := s.readCheckpoint()
	if err != nil {
		return fmt.Errorf("audit log %s: %w", s.path, err)
	}
	if found {
		switch {
		case cur.Size > s.seq:
			return fmt.Errorf("audit log %s: %w", s.path, broken(s.seq+1, "the log holds %d records but its signed checkpoint covers %d: records %d-%d were removed", s.seq, cur.Size, s.seq+1, cur.Size))
		case cur.Size == s.seq && cur.Root != root:
			return fmt.Errorf("audit log %s: %w", s.path, broken(s.seq, "the first %d records do not match the signed checkpoint", s.seq))
		case cur.Size == s.seq:
			s.cpSize, s.lastCP = s.seq, s.clock.Now()
			return nil
		}
	}
	signed, err := SignCheckpoint(s.signer, Checkpoint{Origin: s.origin, Size: s.seq, Root: root})
	if err != nil {
		return fmt.Errorf("%w: signing the checkpoint: %w", ErrUnavailable, err)
	}
	if err := writeFileAtomic(s.cpPath, signed); err != nil {
		return err
	}
	s.cpSize, s.lastCP = s.seq, s.clock.Now()
	return nil
}

// refreshCheckpoint runs after a commit (ioMu and the file lock held): it writes the
// checkpoint now if none was written in the last CheckpointInterval, and otherwise makes
// sure a refresh is due when the interval is over. A failure is kept in cpErr: the next
// commit retries it and fails if it fails again.
func (s *FileSink) refreshCheckpoint() {
	if s.signer == nil {
		return
	}
	now := s.clock.Now()
	since := now.Sub(s.lastCP)
	if s.lastCP.IsZero() || since >= CheckpointInterval || since < 0 {
		s.writeCheckpoint()
		return
	}
	if s.timer == nil {
		s.timer = s.clock.AfterFunc(CheckpointInterval-since, s.timerFired)
	}
}

// timerFired is the due refresh.
func (s *FileSink) timerFired() {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	s.timer = nil
	if s.closed || s.err != nil || s.cpSize == s.seq && s.cpErr == nil {
		return
	}
	s.checkpointLocked()
}

// checkpointLocked takes the file lock, catches up and writes the checkpoint. The caller
// holds ioMu.
func (s *FileSink) checkpointLocked() error {
	if err := s.lockActive(); err != nil {
		s.cpErr = err
		return err
	}
	defer func() { unlock(s.f) }()
	if err := s.catchUp(nil); err != nil {
		s.cpErr = err
		return err
	}
	return s.writeCheckpoint()
}

// Checkpoint returns the signed checkpoint note of the records the sink has verified or
// written so far (not necessarily the stored one, which may lag by up to
// CheckpointInterval), signed now. It fails when the sink writes no checkpoints.
func (s *FileSink) Checkpoint() ([]byte, error) {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if s.signer == nil {
		return nil, fmt.Errorf("%w: this sink keeps no checkpoints", ErrUnavailable)
	}
	return SignCheckpoint(s.signer, Checkpoint{Origin: s.origin, Size: s.seq, Root: s.tree.root()})
}
