package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

// Record is one line of a hash-chained audit log: the event plus its sequence number and
// the hash of the previous line, so deletion, edits, reordering and truncation in the
// middle are detectable (truncation of the tail needs a checkpoint).
type Record struct {
	Event
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"` // hex sha256 of the previous line (without newline); "" for the first
}

// ErrBroken is wrapped by Verify, VerifyFile, OpenFile and Emit when the chain is broken.
var ErrBroken = errors.New("audit log chain broken")

// ErrUnavailable is wrapped by OpenFile, Emit and VerifyFile when the log file cannot be
// opened, locked, read, written or synced: the record could not be kept (or checked).
var ErrUnavailable = errors.New("audit log unavailable")

// DefaultLockWait is how long OpenFile, Emit and VerifyFile wait for another process's
// lock on the log before giving up with ErrUnavailable. Writers hold the lock only while
// appending, so a longer wait means a stuck or hostile holder.
const DefaultLockWait = 10 * time.Second

// maxReadLine is the longest line the reader accepts: this package writes lines of at most
// MaxLineBytes, and earlier versions (which did not bound events) wrote at most this.
const maxReadLine = 16 << 20

// FileSink appends hash-chained records to a JSONL file. Every append holds an exclusive
// OS-level lock on the file, first reads the records other processes appended since (and
// checks that they chain on), then writes and fsyncs; Emit returns only after its record
// is synced. Events emitted concurrently are group-committed: one write and one fsync
// cover every record waiting when a commit starts; a record emitted during a commit goes
// into the next. Any number of processes may append to one
// log this way; the records interleave, the chain stays intact.
type FileSink struct {
	queueMu    sync.Mutex
	queue      []*pending // records waiting for the next commit
	spare      []*pending // the last batch's slice, for reuse
	committing bool       // the committer goroutine is running

	ioMu     sync.Mutex // held while committing and by Close; guards the fields below
	f        *os.File
	path     string
	off      int64 // bytes of the log verified so far (all complete records)
	seq      uint64
	prev     string
	err      error // sticky: after a failed sync the log refuses further events
	closed   bool
	lockWait time.Duration
	tree     compactRange           // Merkle tree of the records verified so far
	rotate   int64                  // WithRotateBytes; 0: never
	segs     int                    // sealed segments read (the active file is segment segs+1 once sealed)
	crashAt  func(step string) bool // tests: simulate a crash after a rotation step
	buf      []byte                 // the commit's buffer, kept for the next
	commits  int                    // commits that wrote records (tests)

	// Checkpoints (see checkpoint.go); nil signer: none are written.
	signer   note.Signer
	verifier note.Verifier
	origin   string
	cpPath   string
	clock    clock
	lastCP   time.Time // when this sink last wrote (or found current) the checkpoint
	cpSize   uint64    // size of the checkpoint this sink last wrote or found
	timer    stopper   // pending refresh, or nil
	cpErr    error     // the last refresh failed: the next commit retries it first
}

type pending struct {
	body []byte // the bounded event's JSON object
	done chan error
}

// OpenFile opens (creating with mode 0600) an audit log for appending. An existing log is
// verified first, under the lock, so a new record never chains onto a tampered one: its
// chain, and, when LOG.checkpoint exists, that the checkpoint is signed by the log key,
// covers no more records than the log holds and matches their tree hash.
//
// The sink keeps the log's signed checkpoint in LOG.checkpoint (path + ".checkpoint"),
// signed by the log key: LOG.key (path + ".key", created with mode 0600 on first use) or
// the key given with WithKeyFile. It refreshes the checkpoint after the first commit, then
// at most once a second while records arrive (a record is covered at most a second after
// it was synced), and at Close, atomically (a temporary file renamed over it) and under the
// log's lock. A checkpoint already covering the log as it stands is left as it is, so
// witness cosignatures stored in it stay.
//
// Errors wrap ErrBroken for a broken chain or a checkpoint the log does not match,
// ErrKey for an unusable key, and ErrUnavailable for anything else.
func OpenFile(path string, opts ...FileOption) (*FileSink, error) {
	o := fileOptions{keyFile: path + ".key", checkpoints: true, lockWait: DefaultLockWait, clock: realClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	return openFile(path, o)
}

// FileOption configures OpenFile.
type FileOption func(*fileOptions)

type fileOptions struct {
	keyFile     string
	origin      string
	checkpoints bool
	lockWait    time.Duration
	clock       clock
	rotateBytes int64
}

// WithKeyFile names the log key file (see LoadOrCreateKey) instead of LOG.key; it is
// created there on first use.
func WithKeyFile(path string) FileOption { return func(o *fileOptions) { o.keyFile = path } }

// WithOrigin sets the checkpoints' origin line; by default it is the log key's name.
func WithOrigin(origin string) FileOption { return func(o *fileOptions) { o.origin = origin } }

func openFile(path string, o fileOptions) (*FileSink, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, path)
	}
	s := &FileSink{path: path, lockWait: o.lockWait, clock: o.clock, rotate: max(o.rotateBytes, 0)}
	if o.checkpoints {
		key, err := LoadOrCreateKey(o.keyFile, DefaultKeyName())
		if err != nil {
			return nil, err
		}
		s.signer, s.verifier = key, key.(*logKey).ver
		s.origin = o.origin
		if s.origin == "" {
			s.origin = key.Name()
		}
		if err := checkOrigin(s.origin); err != nil {
			return nil, err
		}
		s.cpPath = CheckpointPath(path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.f = f
	if err := s.openLocked(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// CheckpointPath returns where the checkpoint of the log at logPath is kept:
// logPath + ".checkpoint".
func CheckpointPath(logPath string) string { return logPath + ".checkpoint" }

// KeyPath returns where the key of the log at logPath is kept by default: logPath + ".key".
func KeyPath(logPath string) string { return logPath + ".key" }

func (s *FileSink) openLocked() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, s.path)
	}
	for tries := 0; ; tries++ {
		if err := lockWithin(s.f, s.lockWait); err != nil {
			return err
		}
		same, err := isActive(s.f, s.path)
		if err == nil && !same && tries >= 100 {
			err = fmt.Errorf("%w: %s keeps being replaced", ErrUnavailable, s.path)
		}
		if err != nil {
			filelock.Unlock(s.f)
			return err
		}
		if same {
			break
		}
		// Rotated away between opening and locking: open the new active file.
		filelock.Unlock(s.f)
		nf, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s.f.Close()
		s.f = nf
	}
	defer func() { filelock.Unlock(s.f) }()
	nums, err := segmentNumbers(s.path)
	if err != nil {
		return err
	}
	for i, k := range nums {
		if k != i+1 {
			return fmt.Errorf("audit log %s: %w", filepath.Base(SegmentPath(s.path, k)), broken(0, "segment %s is missing", filepath.Base(SegmentPath(s.path, i+1))))
		}
	}
	if s.signer == nil {
		if err := s.readSealed(1, nil); err != nil {
			return err
		}
		return s.catchUp(nil)
	}
	// Check the stored checkpoint against the records as they are read.
	cp, found, err := s.readCheckpoint()
	if err != nil {
		return err
	}
	if !found {
		return s.catchUp(nil)
	}
	check := func(n uint64, root tlog.Hash) error {
		if n == cp.Size && root != cp.Root {
			return &BrokenError{Record: n, Msg: fmt.Sprintf("the first %d records do not match the signed checkpoint %s (record %d, the newest it covers, was edited, or records before it rewritten)", n, filepath.Base(s.cpPath), n)}
		}
		return nil
	}
	if cp.Size == 0 {
		if err := check(0, s.tree.root()); err != nil {
			return err
		}
	}
	if err := s.readSealed(1, check); err != nil {
		return err
	}
	if err := s.catchUp(check); err != nil {
		return err
	}
	if s.seq < cp.Size {
		return &BrokenError{Record: s.seq + 1, Msg: fmt.Sprintf("the log holds %d records but its signed checkpoint covers %d: records %d-%d were removed", s.seq, cp.Size, s.seq+1, cp.Size)}
	}
	s.cpSize, s.lastCP = cp.Size, time.Time{}
	return nil
}

// catchUp reads, under the lock, whatever was appended after the verified part and checks
// that it continues the chain, adding the records to the tree. check, when not nil, is
// called with the tree size and hash after each record.
func (s *FileSink) catchUp(check func(n uint64, root tlog.Hash) error) error {
	off, err := s.readFrom(s.f, s.off, filepath.Base(s.path), check)
	s.off = off
	return err
}

// Emit records ev, bounded (see Bound), and returns once the record is synced to disk.
// ctx is consulted only before the event is queued: once queued, it is committed or fails.
// The error wraps ErrUnavailable when the log could not be locked, written or synced, and
// ErrBroken when another writer left it broken; the event is then not recorded.
func (s *FileSink) Emit(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := pendingPool.Get().(*pending)
	var ok bool
	if p.body, ok = appendEvent(p.body[:0], boundEvent(ev)); !ok {
		body, err := encodeJSON(boundEvent(ev))
		if err != nil {
			pendingPool.Put(p)
			return fmt.Errorf("audit: event cannot be encoded: %w", err)
		}
		p.body = append(p.body[:0], body...)
	}
	if len(p.body) > MaxLineBytes-200 { // unreachable by the bounds; kept as a last guard
		n := len(p.body)
		pendingPool.Put(p)
		return fmt.Errorf("audit: event encodes to %d bytes", n)
	}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	if !s.committing {
		// The committer runs in its own goroutine, so that no caller waits for commits
		// other than the one carrying its record.
		s.committing = true
		go s.commitAll()
	}
	s.queueMu.Unlock()
	err := <-p.done
	if cap(p.body) <= 64<<10 {
		pendingPool.Put(p)
	}
	return err
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// commitAll commits batches until nobody is waiting: each commit takes every record
// queued when it starts; records queued meanwhile go into the next.
func (s *FileSink) commitAll() {
	s.queueMu.Lock()
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = s.spare[:0]
		s.queueMu.Unlock()
		err := s.commit(batch)
		for _, q := range batch {
			q.done <- err
		}
		clear(batch)
		s.queueMu.Lock()
		s.spare = batch[:0]
	}
	s.committing = false
	s.queueMu.Unlock()
}

// commit appends batch as consecutive records with one write and one fsync.
func (s *FileSink) commit(batch []*pending) error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("%w: %w", ErrUnavailable, os.ErrClosed)
	case s.err != nil:
		return s.err
	}
	if err := s.lockActive(); err != nil {
		return err
	}
	defer func() { filelock.Unlock(s.f) }()
	if err := s.catchUp(nil); err != nil {
		return err
	}
	if s.cpErr != nil {
		// The last refresh failed: the newest records are not covered. Refuse more until
		// the checkpoint can be written again.
		if err := s.writeCheckpoint(); err != nil {
			return err
		}
	}
	buf := s.buf
	var seq uint64
	var prev string
	var tree compactRange
	for rotations := 0; ; rotations++ {
		buf = buf[:0]
		seq, prev = s.seq, s.prev
		tree = s.tree
		tree.hashes = slices.Clone(tree.hashes)
		var prevHex [2 * sha256.Size]byte
		last := []byte(prev)
		for _, p := range batch {
			seq++
			start := len(buf)
			buf = appendRecordBytes(buf, p.body, seq, last)
			sum := sha256.Sum256(buf[start:])
			hex.Encode(prevHex[:], sum[:])
			last = prevHex[:]
			tree.append(LeafHash(buf[start:]))
			buf = append(buf, '\n')
		}
		if len(batch) > 0 {
			prev = string(last)
		}
		if s.rotate == 0 || s.off == 0 || s.off+int64(len(buf)) <= s.rotate || rotations >= 10 {
			break
		}
		if err := s.rotateLocked(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(buf); err != nil {
		// Remove a partial line, so the log stays readable; we hold the lock and know
		// where our write began.
		if terr := s.f.Truncate(s.off); terr != nil {
			s.err = fmt.Errorf("%w: write: %w (and removing the partial record: %w)", ErrUnavailable, err, terr)
			return s.err
		}
		return fmt.Errorf("%w: write: %w", ErrUnavailable, err)
	}
	if err := s.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the data: refuse further
		// events rather than chain onto records that may not exist.
		s.err = fmt.Errorf("%w: sync: %w", ErrUnavailable, err)
		return s.err
	}
	if cap(buf) <= 1<<20 {
		s.buf = buf[:0]
	}
	s.commits++
	s.off += int64(len(buf))
	s.seq, s.prev = seq, prev
	s.tree = tree
	s.refreshCheckpoint()
	return nil
}

// appendRecord appends the record line (without newline) for an event's JSON object: the
// same bytes as encoding Record{...}, which puts seq and prev_hash last.
func appendRecord(dst, body []byte, seq uint64, prev string) []byte {
	return appendRecordBytes(dst, body, seq, []byte(prev))
}

func appendRecordBytes(dst, body []byte, seq uint64, prev []byte) []byte {
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	return append(dst, `"}`...)
}

// Close writes the checkpoint if records arrived since the last one (see OpenFile) and
// closes the log. Emit fails after Close. The error wraps ErrUnavailable when the
// checkpoint could not be written, ErrBroken when another writer left the log broken.
func (s *FileSink) Close() error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	var err error
	if s.signer != nil && s.err == nil && (s.cpSize != s.seq || s.cpErr != nil) {
		err = s.checkpointLocked()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockWithin takes the exclusive lock on f, waiting at most wait for another holder.
func lockWithin(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := 100 * time.Microsecond
	for {
		err := filelock.TryLock(f)
		if err == nil {
			return nil
		}
		if !errors.Is(err, filelock.ErrLocked) {
			return fmt.Errorf("%w: lock: %w", ErrUnavailable, err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s is locked by another process (waited %v)", ErrUnavailable, f.Name(), wait)
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// Verify reads a hash-chained log from the start and checks that sequence numbers count
// up from 1, each record names the hash of the one before, and every record ends with a
// newline. It returns the number of records and the hash of the last, or an error wrapping
// ErrBroken naming the first broken record. Any line this package writes is read; a line
// over 16 MiB is a broken record. Other errors come from r.
func Verify(r io.Reader) (n uint64, lastHash string, err error) {
	var c chain
	err = c.read(r, maxReadLine)
	return c.n, c.last, err
}

// VerifyFile verifies the log at path (see Verify) as it stood at one instant: it takes
// the writers' lock only to note the log's size, then checks the records up to it, so it
// never reads a record half-written and writers wait only for that instant (on Windows,
// where a held lock also bars reading, for the whole check). Errors wrap
// ErrBroken for a broken chain and ErrUnavailable when the file cannot be opened,
// locked or read.
func VerifyFile(path string) (n uint64, lastHash string, err error) {
	return verifyFile(path, DefaultLockWait)
}

func verifyFile(path string, lockWait time.Duration) (n uint64, lastHash string, err error) {
	snap, err := openLogSnapshot(path, lockWait, nil)
	if err != nil {
		return 0, "", err
	}
	defer snap.Close()
	var c chain
	err = snap.readFiles(&c, func(lf logFile) error {
		c.bytes = 0
		return c.read(io.NewSectionReader(lf.f, 0, lf.size), maxReadLine)
	})
	return c.n, c.last, err
}

func unlock(f *os.File) { filelock.Unlock(f) }

// readUnderLock: on Windows the lock covers the file's bytes (LockFileEx locks are
// mandatory), so other processes cannot read while a writer holds it; there the reader
// keeps the lock while it reads.
const readUnderLock = runtime.GOOS == "windows"

// BrokenError is the error (wrapping ErrBroken) naming the first broken record of a log.
type BrokenError struct {
	Record uint64 // seq of the first record that is broken, missing or out of place (0: before the first)
	Msg    string // what is wrong, naming the record
}

func (e *BrokenError) Error() string { return ErrBroken.Error() + ": " + e.Msg }

// Unwrap returns ErrBroken.
func (e *BrokenError) Unwrap() error { return ErrBroken }

func broken(record uint64, format string, args ...any) error {
	return &BrokenError{Record: record, Msg: fmt.Sprintf(format, args...)}
}

// chain is the state of a chain check: records and bytes read, hash of the last record.
type chain struct {
	n     uint64
	last  string
	bytes int64
	// onRecord, when not nil, is called with each record that chains on (the line without
	// its newline, shared; its event_id) before bytes counts it. An error stops the read.
	onRecord func(line []byte, eventID string) error
}

// read checks the records in r, continuing from c, until EOF or the first broken record.
func (c *chain) read(r io.Reader, maxLine int) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := readLine(br, maxLine)
		switch {
		case err == io.EOF && line == nil:
			return nil
		case errors.Is(err, errTooLong):
			return broken(c.n+1, "record %d is longer than %d bytes", c.n+1, maxLine)
		case err == io.EOF:
			return broken(c.n+1, "record %d is incomplete (no newline at the end; an interrupted write?)", c.n+1)
		case err != nil:
			return err
		}
		if err := c.check(line[:len(line)-1]); err != nil {
			return err
		}
		c.bytes += int64(len(line))
	}
}

// readBytes is read over a log held in memory; the lines passed to onRecord are slices of
// data.
func (c *chain) readBytes(data []byte, maxLine int) error {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		switch {
		case i < 0 && len(data) > maxLine || i >= maxLine:
			return broken(c.n+1, "record %d is longer than %d bytes", c.n+1, maxLine)
		case i < 0:
			return broken(c.n+1, "record %d is incomplete (no newline at the end; an interrupted write?)", c.n+1)
		}
		if err := c.check(data[:i]); err != nil {
			return err
		}
		c.bytes += int64(i + 1)
		data = data[i+1:]
	}
	return nil
}

// check checks one record (a line without its newline) against the chain and adds it.
func (c *chain) check(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return broken(c.n+1, "blank line after record %d", c.n)
	}
	var rec struct {
		Seq      uint64 `json:"seq"`
		PrevHash string `json:"prev_hash"`
		EventID  any    `json:"event_id"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return broken(c.n+1, "record %d is not a JSON record: %s", c.n+1, shortErr(err))
	}
	if rec.Seq != c.n+1 {
		return broken(c.n+1, "record %d has seq %d", c.n+1, rec.Seq)
	}
	if rec.PrevHash != c.last {
		if c.n == 0 {
			return broken(1, "record 1 names a previous record (records before it removed?)")
		}
		return broken(c.n, "record %d does not chain to record %d (record %d edited, or records deleted, inserted or reordered)", c.n+1, c.n, c.n)
	}
	if c.onRecord != nil {
		id, _ := rec.EventID.(string)
		if err := c.onRecord(line, id); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(line)
	c.last = hex.EncodeToString(sum[:])
	c.n++
	return nil
}

// shortErr keeps a JSON error message short: some quote the offending input.
func shortErr(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = boundString(msg)
	}
	return msg
}

var errTooLong = errors.New("line too long")

// readLine returns the next line with its newline; at EOF, the unterminated rest (or nil)
// with io.EOF. A line longer than max (newline included) is errTooLong.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errTooLong
		}
		if err == bufio.ErrBufferFull {
			line = append(line, frag...)
			continue
		}
		if err == io.EOF && len(line)+len(frag) == 0 {
			return nil, io.EOF
		}
		line = append(line, frag...)
		return line, err
	}
}
