package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// LeafHash returns the RFC 6962 leaf hash of a record line (without its newline): the
// hash the Merkle tree of the log is built from. Record seq n is leaf n-1.
func LeafHash(line []byte) tlog.Hash { return tlog.RecordHash(line) }

// LineHash returns the chain hash of a record line (without its newline): the lowercase
// hex sha256 that the next record names as its prev_hash.
func LineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// compactRange is the right edge of a Merkle tree of n leaves: the roots of its maximal
// complete subtrees, largest first (one per set bit of n). Appending a leaf costs one
// leaf hash and, on average, one node hash; the tree hash folds at most 64 hashes.
type compactRange struct {
	n      uint64
	hashes []tlog.Hash
}

func (r *compactRange) append(h tlog.Hash) {
	for s := r.n; s&1 == 1; s >>= 1 {
		h = tlog.NodeHash(r.hashes[len(r.hashes)-1], h)
		r.hashes = r.hashes[:len(r.hashes)-1]
	}
	r.hashes = append(r.hashes, h)
	r.n++
}

// root returns the RFC 6962 tree hash (tlog.TreeHash) of the n leaves.
func (r *compactRange) root() tlog.Hash {
	if r.n == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := r.hashes[len(r.hashes)-1]
	for i := len(r.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(r.hashes[i], h)
	}
	return h
}

// Log is a verified, in-memory view of a hash-chained log file as it stood when ReadLog
// read it: its record lines and the Merkle tree over them, from which it computes tree
// hashes of any prefix and inclusion and consistency proofs. A Log is safe for concurrent
// use; it never changes.
type Log struct {
	path   string
	data   []byte
	ends   []int64 // ends[i] = offset just past record i's newline
	hashes []tlog.Hash
	ids    map[string]uint64
}

// ReadLog reads and verifies the log at path as it stood at one instant (see VerifyFile):
// the chain of every record, then the Merkle tree over them. Errors wrap ErrBroken (a
// *BrokenError naming the first broken record) or ErrUnavailable (the file cannot be
// opened, locked or read).
func ReadLog(path string) (*Log, error) {
	l, _, err := readLog(path, DefaultLockWait, false)
	return l, err
}

// ReadLogAndCheckpoint is ReadLog that also reads the log's checkpoint file
// (CheckpointPath) at the same instant, under the writers' lock, so the two agree: a
// writer never leaves records uncovered for longer than CheckpointInterval, and never a
// checkpoint beyond the records. The checkpoint is nil when there is no file (it is not
// verified here: see OpenCheckpoint).
func ReadLogAndCheckpoint(path string) (*Log, []byte, error) {
	return readLog(path, DefaultLockWait, true)
}

func readLog(path string, lockWait time.Duration, withCheckpoint bool) (*Log, []byte, error) {
	var cp []byte
	var underLock func() error
	if withCheckpoint {
		underLock = func() error {
			var err error
			cp, err = ReadCheckpointFile(CheckpointPath(path))
			if errors.Is(err, fs.ErrNotExist) {
				cp, err = nil, nil
			}
			return err
		}
	}
	snap, err := openLogSnapshot(path, lockWait, underLock)
	if err != nil {
		return nil, nil, err
	}
	defer snap.Close()
	size := snap.totalSize()
	if size > math.MaxInt-1 || size < 0 {
		return nil, nil, fmt.Errorf("%w: %s is too large to read into memory", ErrUnavailable, path)
	}
	data := make([]byte, 0, size)
	for _, lf := range snap.files {
		start := len(data)
		data = data[:start+int(lf.size)]
		if _, err := io.ReadFull(io.NewSectionReader(lf.f, 0, lf.size), data[start:]); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	l, err := parseLogSnapshot(path, data, snap)
	return l, cp, err
}

// errIs reports whether err is one of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// parseLog verifies data as a log and builds its tree.
func parseLog(path string, data []byte) (*Log, error) {
	return parseLogSnapshot(path, data, nil)
}

// parseLogSnapshot is parseLog over data holding the files of snap one after the other
// (nil: one file).
func parseLogSnapshot(path string, data []byte, snap *logSnapshot) (*Log, error) {
	l := &Log{path: path, data: data, ids: make(map[string]uint64)}
	var c chain
	c.onRecord = func(line []byte, eventID string) error {
		n := int64(len(l.ends))
		l.ends = append(l.ends, c.bytes+int64(len(line))+1)
		h := LeafHash(line)
		hs, err := tlog.StoredHashesForRecordHash(n, h, l)
		if err != nil { // unreachable: l holds every hash below n
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		l.hashes = append(l.hashes, hs...)
		if _, dup := l.ids[eventID]; !dup && eventID != "" {
			l.ids[eventID] = uint64(n)
		}
		return nil
	}
	if snap != nil {
		var off int64
		if err := snap.readFiles(&c, func(lf logFile) error {
			part := data[off : off+lf.size]
			off += lf.size
			return c.readBytes(part, maxReadLine)
		}); err != nil {
			return nil, err
		}
		return l, nil
	}
	if err := c.readBytes(data, maxReadLine); err != nil {
		if path != "" {
			err = fmt.Errorf("audit log %s: %w", filepath.Base(path), err)
		}
		return nil, err
	}
	return l, nil
}

// ReadHashes implements tlog.HashReader over the stored hashes.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("audit: hash %d not stored", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// Size returns the number of records.
func (l *Log) Size() uint64 { return uint64(len(l.ends)) }

// Root returns the RFC 6962 tree hash of the first size records.
func (l *Log) Root(size uint64) (tlog.Hash, error) {
	if size > l.Size() {
		return tlog.Hash{}, fmt.Errorf("audit: tree size %d is beyond the log's %d records", size, l.Size())
	}
	return tlog.TreeHash(int64(size), l)
}

// Checkpoint returns the (unsigned) checkpoint of the first size records under origin.
func (l *Log) Checkpoint(origin string, size uint64) (Checkpoint, error) {
	root, err := l.Root(size)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Origin: origin, Size: size, Root: root}, nil
}

// Line returns record i's line without its newline (i 0-based: record seq i+1). The
// slice is shared: do not modify it. It panics when i >= Size(), like an index.
func (l *Log) Line(i uint64) []byte {
	start := int64(0)
	if i > 0 {
		start = l.ends[i-1]
	}
	return l.data[start : l.ends[i]-1]
}

// Record returns record i (0-based) decoded. A field that does not decode (a record
// written by a foreign tool) is left zero; seq and prev_hash always decode, since
// ReadLog checked them.
func (l *Log) Record(i uint64) Record {
	var r Record
	json.Unmarshal(l.Line(i), &r)
	return r
}

// Find returns the index (0-based) of the first record whose event_id is eventID.
func (l *Log) Find(eventID string) (uint64, bool) {
	i, ok := l.ids[eventID]
	return i, ok
}

// InclusionProof returns the proof that record i (0-based) is in the tree of the first
// size records.
func (l *Log) InclusionProof(i, size uint64) (tlog.RecordProof, error) {
	if i >= size || size > l.Size() {
		return nil, fmt.Errorf("audit: no inclusion proof of record %d in a tree of %d (log has %d)", i, size, l.Size())
	}
	return tlog.ProveRecord(int64(size), int64(i), l)
}

// ConsistencyProof returns the proof that the tree of the first oldSize records is a
// prefix of the tree of the first newSize. For oldSize 0 it is empty.
func (l *Log) ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error) {
	if oldSize > newSize || newSize > l.Size() {
		return nil, fmt.Errorf("audit: no consistency proof from %d to %d records (log has %d)", oldSize, newSize, l.Size())
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	return tlog.ProveTree(int64(newSize), int64(oldSize), l)
}

// VerifyInclusion checks that line (a record line without its newline) is leaf i
// (0-based) of the tree c commits to. Errors wrap ErrCheckpoint.
func VerifyInclusion(c Checkpoint, i uint64, line []byte, p tlog.RecordProof) error {
	if i >= c.Size || c.Size > math.MaxInt64 {
		return fmt.Errorf("%w: record %d is outside a tree of %d", ErrCheckpoint, i, c.Size)
	}
	if len(p) > 64 {
		return fmt.Errorf("%w: inclusion proof of %d hashes", ErrCheckpoint, len(p))
	}
	if err := tlog.CheckRecord(p, int64(c.Size), c.Root, int64(i), LeafHash(line)); err != nil {
		return fmt.Errorf("%w: record %d is not in the tree of %d: %w", ErrCheckpoint, i, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree old commits to is a prefix of the tree new
// commits to. Both must name the same origin; a tree is consistent with itself only
// when the roots are equal, and every tree with the empty one (with an empty proof).
// Errors wrap ErrCheckpoint.
func VerifyConsistency(old, new Checkpoint, p tlog.TreeProof) error {
	switch {
	case old.Origin != new.Origin:
		return fmt.Errorf("%w: origins differ (%q, %q)", ErrCheckpoint, old.Origin, new.Origin)
	case old.Size > new.Size:
		return fmt.Errorf("%w: the old checkpoint (%d) is larger than the new (%d)", ErrCheckpoint, old.Size, new.Size)
	case new.Size > math.MaxInt64:
		return fmt.Errorf("%w: tree size %d", ErrCheckpoint, new.Size)
	case len(p) > 128:
		return fmt.Errorf("%w: consistency proof of %d hashes", ErrCheckpoint, len(p))
	case old.Size == 0:
		empty, _ := tlog.TreeHash(0, nil)
		if len(p) != 0 || old.Root != empty {
			return fmt.Errorf("%w: an empty tree has the empty root and an empty proof", ErrCheckpoint)
		}
		return nil
	}
	if err := tlog.CheckTree(p, int64(new.Size), new.Root, int64(old.Size), old.Root); err != nil {
		return fmt.Errorf("%w: the tree of %d is not a prefix of the tree of %d: %w", ErrCheckpoint, old.Size, new.Size, err)
	}
	return nil
}
