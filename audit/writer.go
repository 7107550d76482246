package audit

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// WriterSink writes each event, bounded (see Bound), as one JSON line to an io.Writer:
// the reference's JSONL shape, without the file log's seq and prev_hash (the hash chain
// is the file sink's; a stream of lines on stdout is for a collector that keeps its own
// record). Lines of concurrent Emits never interleave: each line is one Write, made under
// a lock.
//
// A failed or short write is sticky: the stream may now end in part of a line, so every
// later Emit fails with the same error (wrapping ErrUnavailable) and writes nothing.
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewWriterSink returns a Sink writing JSON lines to w, for example os.Stdout. Emit
// returns once w.Write has returned; it does not sync w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

var _ Sink = (*WriterSink)(nil)

// Emit writes ev, bounded, as one line. ctx is consulted before the write. The error wraps
// ErrUnavailable when this or an earlier write failed: the event is then not recorded.
func (s *WriterSink) Emit(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := MarshalLine(ev)
	if err != nil {
		return fmt.Errorf("audit: event cannot be encoded: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	n, err := s.w.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = fmt.Errorf("%w: write: %w", ErrUnavailable, err)
		return s.err
	}
	return nil
}

// Ready returns the sticky error (nil while writes succeed), so that a readiness probe
// reports a broken stream.
func (s *WriterSink) Ready(context.Context) error { return s.Err() }

// Err returns the sticky error after a failed write, or nil.
func (s *WriterSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
