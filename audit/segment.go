package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

// A log may be split into segments (see WithRotateBytes): the sealed segments
// LOG.000001, LOG.000002, … (SegmentPath), oldest first, and the active file LOG that
// writers append to. The records run on across them: seq counts up over the whole log,
// the first record of a segment names the hash of the last record of the one before, and
// one Merkle tree (one checkpoint, LOG.checkpoint) covers them all. Readers read the
// segments and the active file as one log.

// SegmentPath returns the path of sealed segment k (k ≥ 1) of the log at logPath:
// logPath + "." + k in at least six decimal digits (LOG.000001).
func SegmentPath(logPath string, k int) string {
	return logPath + "." + fmt.Sprintf("%06d", k)
}

// WithRotateBytes makes the sink rotate the log by size: when appending a batch would make
// the active file larger than n bytes (and it holds at least one record), the active file
// is first sealed, renamed to the next segment (SegmentPath), and a new empty active file
// continues the log. n ≤ 0 (the default) never rotates. Rotation runs under the writers'
// lock; a crash at any point of it loses no synced record and leaves a log that opens
// and verifies.
func WithRotateBytes(n int64) FileOption { return func(o *fileOptions) { o.rotateBytes = n } }

// segmentNumbers returns the numbers of the sealed segments of logPath found in its
// directory, in ascending order.
func segmentNumbers(logPath string) ([]int, error) {
	dir, base := filepath.Split(logPath)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var nums []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || len(rest) < 6 || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		k, err := strconv.Atoi(rest)
		if err != nil || k < 1 || fmt.Sprintf("%06d", k) != rest {
			continue
		}
		nums = append(nums, k)
	}
	slices.Sort(nums)
	return nums, nil
}

// logFile is one file of a log snapshot.
type logFile struct {
	name string // base name, for messages
	num  int    // segment number; 0 for the active file
	f    *os.File
	size int64
}

// logSnapshot is a log as it stood at one instant: its sealed segments and active file,
// open, with the sizes noted under the writers' lock.
type logSnapshot struct {
	path   string
	files  []logFile // sealed segments oldest first, then the active file (if it exists)
	active *os.File  // nil when the active file was missing (an interrupted rotation)
}

func (s *logSnapshot) Close() {
	if readUnderLock && s.active != nil {
		unlock(s.active)
	}
	for _, f := range s.files {
		f.f.Close()
	}
	if s.active != nil && (len(s.files) == 0 || s.files[len(s.files)-1].f != s.active) {
		s.active.Close()
	}
}

// openActiveLocked opens the active file of the log at path (read-only unless rw) and
// takes the writers' lock on it, making sure the file locked is still the one at path (a
// writer may have rotated it away while this waited). A missing active file is returned
// as (nil, nil) when the log has sealed segments (a rotation interrupted by a crash: the
// next writer creates it).
func openActiveLocked(path string, lockWait time.Duration) (*os.File, error) {
	for tries := 0; ; tries++ {
		if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, path)
		}
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			if nums, lerr := segmentNumbers(path); lerr == nil && len(nums) > 0 {
				return nil, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err := lockWithin(f, lockWait); err != nil {
			f.Close()
			return nil, err
		}
		if same, err := isActive(f, path); err != nil || same || tries >= 100 {
			if err == nil && !same {
				err = fmt.Errorf("%w: %s keeps being replaced", ErrUnavailable, path)
			}
			if err != nil {
				filelock.Unlock(f)
				f.Close()
				return nil, err
			}
			return f, nil
		}
		filelock.Unlock(f)
		f.Close()
	}
}

// isActive reports whether f is (still) the file at path.
func isActive(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	cur, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return os.SameFile(fi, cur), nil
}

// openLogSnapshot opens the log at path, segments and all, noting under the writers' lock
// the size of the active file, and calls underLock (when not nil) while it holds the lock.
func openLogSnapshot(path string, lockWait time.Duration, underLock func() error) (*logSnapshot, error) {
	active, err := openActiveLocked(path, lockWait)
	if err != nil {
		return nil, err
	}
	snap := &logSnapshot{path: path, active: active}
	fail := func(err error) (*logSnapshot, error) {
		snap.Close()
		if !errIs(err, ErrUnavailable, ErrCheckpoint, ErrBroken) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, err
	}
	if active != nil && !readUnderLock {
		defer filelock.Unlock(active)
	}
	nums, err := segmentNumbers(path)
	if err != nil {
		return fail(err)
	}
	for _, k := range nums {
		sp := SegmentPath(path, k)
		f, err := os.Open(sp)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		fi, err := f.Stat()
		if err == nil && !fi.Mode().IsRegular() {
			err = fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, sp)
		}
		if err != nil {
			f.Close()
			return fail(err)
		}
		snap.files = append(snap.files, logFile{name: filepath.Base(sp), num: k, f: f, size: fi.Size()})
	}
	if active != nil {
		fi, err := active.Stat()
		if err != nil {
			return fail(err)
		}
		snap.files = append(snap.files, logFile{name: filepath.Base(path), f: active, size: fi.Size()})
	}
	if underLock != nil {
		if err := underLock(); err != nil {
			return fail(err)
		}
	}
	return snap, nil
}

// readFiles runs read over each file of the snapshot in order, checking that the sealed
// segments are numbered 1, 2, … without a gap, and names the file in errors. read is
// given the chain so far; it continues it.
func (s *logSnapshot) readFiles(c *chain, read func(lf logFile) error) error {
	for i, lf := range s.files {
		if lf.num != 0 && lf.num != i+1 {
			return fmt.Errorf("audit log %s: %w", lf.name, broken(c.n+1, "segment %s is missing (it held record %d or later ones)", filepath.Base(SegmentPath(s.path, i+1)), c.n+1))
		}
		before := c.n
		if err := read(lf); err != nil {
			var be *BrokenError
			if i > 0 && c.n == before && errors.As(err, &be) {
				be.Msg += fmt.Sprintf(" (the first record of %s does not continue %s: a segment was removed, reordered, substituted or truncated)", lf.name, s.files[i-1].name)
			}
			if !errors.Is(err, ErrBroken) && !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return fmt.Errorf("audit log %s: %w", lf.name, err)
		}
	}
	return nil
}

// totalSize is the bytes of all files of the snapshot.
func (s *logSnapshot) totalSize() int64 {
	var n int64
	for _, f := range s.files {
		n += f.size
	}
	return n
}

// readSealed reads sealed segments from k on (as far as they exist) into the sink's
// chain and tree, updating s.segs. The caller holds the writers' lock.
func (s *FileSink) readSealed(k int, check func(n uint64, root tlog.Hash) error) error {
	for ; ; k++ {
		sp := SegmentPath(s.path, k)
		f, err := os.Open(sp)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		_, err = s.readFrom(f, 0, filepath.Base(sp), check)
		f.Close()
		if err != nil {
			return err
		}
		s.segs = k
	}
}

// lockActive takes the writers' lock on the active file. When another writer rotated the
// file this sink holds away, the sink first reads the rest of it (now a sealed segment)
// and any segments sealed after it, then opens the new active file and locks that.
func (s *FileSink) lockActive() error { return s.lockActiveFrom(true) }

// lockActiveFrom is lockActive; confirmed tells whether s.f was the active file when this
// sink last held the lock on it (so that, rotated away since, it is segment s.segs+1).
func (s *FileSink) lockActiveFrom(confirmed bool) error {
	for tries := 0; ; tries++ {
		if err := lockWithin(s.f, s.lockWait); err != nil {
			return err
		}
		same, err := isActive(s.f, s.path)
		if err == nil && !same && tries >= 100 {
			err = fmt.Errorf("%w: %s keeps being replaced", ErrUnavailable, s.path)
		}
		if err == nil && same && !confirmed {
			// A new active file: under its lock no segment is sealed, so read those
			// sealed since this sink's file was rotated away.
			err = s.readSealed(s.segs+1, nil)
		}
		if err != nil || same {
			if err != nil {
				filelock.Unlock(s.f)
			}
			return err
		}
		if confirmed {
			// Rotated away: our file is sealed segment s.segs+1 and takes no more appends.
			if err := s.catchUp(nil); err != nil {
				filelock.Unlock(s.f)
				return err
			}
			sealed := SegmentPath(s.path, s.segs+1)
			fi, err1 := s.f.Stat()
			si, err2 := os.Stat(sealed)
			if err1 != nil || err2 != nil || !os.SameFile(fi, si) {
				filelock.Unlock(s.f)
				return fmt.Errorf("audit log %s: %w", s.path, broken(s.seq+1, "the active file was rotated away but is not segment %s", filepath.Base(sealed)))
			}
			s.segs++
		}
		filelock.Unlock(s.f)
		nf, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s.f.Close()
		s.f, s.off, confirmed = nf, 0, false
	}
}

// rotateLocked seals the active file as the next segment and starts a new one. The caller
// holds ioMu and the lock on the active file, and has caught up. The steps, each safe to
// be cut short by a crash: (1) rename LOG to LOG.k and sync the directory: LOG.k holds
// every record, LOG is missing until (2) creates it empty (a writer opening the log meanwhile
// creates it; readers treat it as empty), synced. Only then is the old file unlocked.
// On an error the caller's deferred unlock releases whichever file s.f is.
func (s *FileSink) rotateLocked() error {
	k := s.segs + 1
	sealed := SegmentPath(s.path, k)
	if _, err := os.Lstat(sealed); err == nil {
		return fmt.Errorf("%w: cannot rotate: %s exists", ErrUnavailable, sealed)
	}
	if err := os.Rename(s.path, sealed); err != nil {
		return fmt.Errorf("%w: rotate: %w", ErrUnavailable, err)
	}
	syncDir(s.path)
	if s.crashAt != nil && s.crashAt("renamed") {
		return fmt.Errorf("%w: simulated crash after renaming", ErrUnavailable)
	}
	nf, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: rotate: %w", ErrUnavailable, err)
	}
	syncDir(s.path)
	if s.crashAt != nil && s.crashAt("created") {
		nf.Close()
		return fmt.Errorf("%w: simulated crash after creating the new file", ErrUnavailable)
	}
	filelock.Unlock(s.f)
	s.f.Close()
	s.f, s.off, s.segs = nf, 0, k
	// Another writer may have created the new file before us (and appended to it, and
	// rotated it in turn, sealing further segments): lock whatever is active now and
	// read what was sealed since.
	if err := s.lockActiveFrom(false); err != nil {
		return err
	}
	return s.catchUp(nil)
}

// readFrom reads, from off, the records in f (named name in errors) that continue the
// chain, adding them to the tree; check as for catchUp. It returns the new offset.
func (s *FileSink) readFrom(f *os.File, off int64, name string, check func(n uint64, root tlog.Hash) error) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return off, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	size := fi.Size()
	switch {
	case size < off:
		return off, fmt.Errorf("audit log %s: %w", name, &BrokenError{Record: s.seq, Msg: fmt.Sprintf("it shrank from %d to %d bytes (records after %d removed)", off, size, s.seq)})
	case size == off:
		return off, nil
	}
	before := s.seq
	c := chain{n: s.seq, last: s.prev}
	tree := s.tree
	tree.hashes = slices.Clone(tree.hashes)
	c.onRecord = func(line []byte, _ string) error {
		tree.append(LeafHash(line))
		if check != nil {
			return check(tree.n, tree.root())
		}
		return nil
	}
	if err := c.read(io.NewSectionReader(f, off, size-off), maxReadLine); err != nil {
		var be *BrokenError
		if off == 0 && c.n == before && before > 0 && errors.As(err, &be) {
			be.Msg += fmt.Sprintf(" (the first record of %s does not continue the segment before it: a segment was removed, reordered, substituted or truncated)", name)
		}
		if !errors.Is(err, ErrBroken) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return off, fmt.Errorf("audit log %s: %w", name, err)
	}
	s.seq, s.prev = c.n, c.last
	s.tree = tree
	return off + c.bytes, nil
}
