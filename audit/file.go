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
	"sync"
)

// Record is one line of a hash-chained audit log: the event plus its sequence number and
// the hash of the previous line, so deletion, edits, reordering and truncation in the
// middle are detectable (truncation of the tail needs a checkpoint).
type Record struct {
	Event
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"` // hex sha256 of the previous line (without newline); "" for the first
}

// FileSink appends hash-chained records to a JSONL file and syncs each one before Emit
// returns, so an acknowledged event survives a crash.
type FileSink struct {
	mu   sync.Mutex
	f    *os.File
	seq  uint64
	prev string
	err  error // sticky: after a failed write the log refuses further events
}

// OpenFile opens (creating with mode 0600) an audit log for appending. An existing log is
// verified first, so a new record never chains onto a tampered one.
func OpenFile(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	n, last, err := Verify(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return &FileSink{f: f, seq: n, prev: last}, nil
}

// Emit appends ev and fsyncs.
func (s *FileSink) Emit(_ context.Context, ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	line, err := json.Marshal(Record{Event: ev, Seq: s.seq + 1, PrevHash: s.prev})
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		s.err = fmt.Errorf("audit: write: %w", err)
		return s.err
	}
	if err := s.f.Sync(); err != nil {
		s.err = fmt.Errorf("audit: sync: %w", err)
		return s.err
	}
	s.seq++
	sum := sha256.Sum256(line)
	s.prev = hex.EncodeToString(sum[:])
	return nil
}

// Close closes the log.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// ErrBroken is wrapped by Verify when the chain is broken.
var ErrBroken = errors.New("audit log chain broken")

// Verify reads a hash-chained log from the start and checks that sequence numbers count
// up from 1 and each record names the hash of the one before. It returns the number of
// records and the hash of the last, or an error naming the first broken record.
func Verify(r io.Reader) (n uint64, lastHash string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			return n, lastHash, fmt.Errorf("%w: blank line after record %d", ErrBroken, n)
		}
		var rec struct {
			Seq      uint64 `json:"seq"`
			PrevHash string `json:"prev_hash"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return n, lastHash, fmt.Errorf("%w: record %d is not JSON: %v", ErrBroken, n+1, err)
		}
		if rec.Seq != n+1 {
			return n, lastHash, fmt.Errorf("%w: record %d has seq %d", ErrBroken, n+1, rec.Seq)
		}
		if rec.PrevHash != lastHash {
			return n, lastHash, fmt.Errorf("%w: record %d does not chain to record %d (edited, deleted or reordered)", ErrBroken, n+1, n)
		}
		sum := sha256.Sum256(line)
		lastHash = hex.EncodeToString(sum[:])
		n++
	}
	if err := sc.Err(); err != nil {
		return n, lastHash, err
	}
	return n, lastHash, nil
}
