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
	"runtime"
	"strconv"
	"sync"
	"time"

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
// cover every record waiting at that moment. Any number of processes may append to one
// log this way; the records interleave, the chain stays intact.
type FileSink struct {
	queueMu sync.Mutex
	queue   []*pending
	leader  bool // a goroutine is committing batches

	ioMu     sync.Mutex // held while committing and by Close; guards the fields below
	f        *os.File
	path     string
	off      int64 // bytes of the log verified so far (all complete records)
	seq      uint64
	prev     string
	err      error // sticky: after a failed sync the log refuses further events
	closed   bool
	lockWait time.Duration
}

type pending struct {
	body []byte // the bounded event's JSON object
	done chan error
}

// OpenFile opens (creating with mode 0600) an audit log for appending. An existing log is
// verified first, under the lock, so a new record never chains onto a tampered one.
// Errors wrap ErrBroken for a broken chain and ErrUnavailable for anything else.
func OpenFile(path string) (*FileSink, error) { return openFile(path, DefaultLockWait) }

func openFile(path string, lockWait time.Duration) (*FileSink, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s := &FileSink{f: f, path: path, lockWait: lockWait}
	if err := s.openLocked(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *FileSink) openLocked() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, s.path)
	}
	if err := lockWithin(s.f, s.lockWait); err != nil {
		return err
	}
	defer filelock.Unlock(s.f)
	return s.catchUp()
}

// catchUp reads, under the lock, whatever was appended after the verified part and checks
// that it continues the chain.
func (s *FileSink) catchUp() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	size := fi.Size()
	switch {
	case size < s.off:
		return fmt.Errorf("audit log %s: %w: it shrank from %d to %d bytes (records after %d removed)", s.path, ErrBroken, s.off, size, s.seq)
	case size == s.off:
		return nil
	}
	c := chain{n: s.seq, last: s.prev}
	if err := c.read(io.NewSectionReader(s.f, s.off, size-s.off), maxReadLine); err != nil {
		if !errors.Is(err, ErrBroken) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("audit log %s: %w", s.path, err)
	}
	s.off += c.bytes
	s.seq, s.prev = c.n, c.last
	return nil
}

// Emit records ev, bounded (see Bound), and returns once the record is synced to disk.
// ctx is consulted only before the event is queued: once queued, it is committed or fails.
// The error wraps ErrUnavailable when the log could not be locked, written or synced, and
// ErrBroken when another writer left it broken; the event is then not recorded.
func (s *FileSink) Emit(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := encodeJSON(Bound(ev))
	if err != nil {
		return fmt.Errorf("audit: event cannot be encoded: %w", err)
	}
	if len(body) > MaxLineBytes-200 { // unreachable by the bounds; kept as a last guard
		return fmt.Errorf("audit: event encodes to %d bytes", len(body))
	}
	p := &pending{body: body, done: make(chan error, 1)}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	if s.leader {
		s.queueMu.Unlock()
		return <-p.done
	}
	// Lead: commit batches until nobody is waiting.
	s.leader = true
	for len(s.queue) > 0 {
		batch := s.queue
		s.queue = nil
		s.queueMu.Unlock()
		err := s.commit(batch)
		for _, q := range batch {
			q.done <- err
		}
		s.queueMu.Lock()
	}
	s.leader = false
	s.queueMu.Unlock()
	return <-p.done
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
	if err := lockWithin(s.f, s.lockWait); err != nil {
		return err
	}
	defer filelock.Unlock(s.f)
	if err := s.catchUp(); err != nil {
		return err
	}
	var buf []byte
	seq, prev := s.seq, s.prev
	for _, p := range batch {
		seq++
		start := len(buf)
		buf = appendRecord(buf, p.body, seq, prev)
		sum := sha256.Sum256(buf[start:])
		prev = hex.EncodeToString(sum[:])
		buf = append(buf, '\n')
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
	s.off += int64(len(buf))
	s.seq, s.prev = seq, prev
	return nil
}

// appendRecord appends the record line (without newline) for an event's JSON object: the
// same bytes as encoding Record{...}, which puts seq and prev_hash last.
func appendRecord(dst, body []byte, seq uint64, prev string) []byte {
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	return append(dst, `"}`...)
}

// Close closes the log. Emit fails after Close.
func (s *FileSink) Close() error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.f.Close()
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
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("%w: %s is not a regular file", ErrUnavailable, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer f.Close()
	if err := lockWithin(f, lockWait); err != nil {
		return 0, "", err
	}
	fi, err := f.Stat()
	if readUnderLock {
		defer filelock.Unlock(f)
	} else {
		filelock.Unlock(f)
	}
	if err != nil {
		return 0, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var c chain
	if err := c.read(io.NewSectionReader(f, 0, fi.Size()), maxReadLine); err != nil {
		if !errors.Is(err, ErrBroken) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return c.n, c.last, err
	}
	return c.n, c.last, nil
}

// readUnderLock: on Windows the lock covers the file's bytes (LockFileEx locks are
// mandatory), so other processes cannot read while a writer holds it; there the reader
// keeps the lock while it reads.
const readUnderLock = runtime.GOOS == "windows"

// chain is the state of a chain check: records and bytes read, hash of the last record.
type chain struct {
	n     uint64
	last  string
	bytes int64
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
			return fmt.Errorf("%w: record %d is longer than %d bytes", ErrBroken, c.n+1, maxLine)
		case err == io.EOF:
			return fmt.Errorf("%w: record %d is incomplete (no newline at the end; an interrupted write?)", ErrBroken, c.n+1)
		case err != nil:
			return err
		}
		if err := c.check(line[:len(line)-1]); err != nil {
			return err
		}
		c.bytes += int64(len(line))
	}
}

// check checks one record (a line without its newline) against the chain and adds it.
func (c *chain) check(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return fmt.Errorf("%w: blank line after record %d", ErrBroken, c.n)
	}
	var rec struct {
		Seq      uint64 `json:"seq"`
		PrevHash string `json:"prev_hash"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("%w: record %d is not a JSON record: %s", ErrBroken, c.n+1, shortErr(err))
	}
	if rec.Seq != c.n+1 {
		return fmt.Errorf("%w: record %d has seq %d", ErrBroken, c.n+1, rec.Seq)
	}
	if rec.PrevHash != c.last {
		return fmt.Errorf("%w: record %d does not chain to record %d (edited, deleted or reordered)", ErrBroken, c.n+1, c.n)
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
