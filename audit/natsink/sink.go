// Package natsink carries audit events of many nodes through a NATS JetStream stream into
// one hash-chained audit log.
//
// Every node's Sink publishes each event to the stream and returns only once JetStream has
// acknowledged storing it (fail closed: no acknowledgement, no success). The message's
// Nats-Msg-Id is the event id, so JetStream drops a duplicate published within the
// stream's duplicate window (a retried Emit, say). One Collector reads the stream in order
// and appends each event to one audit.FileSink, which gives the events of all nodes one
// order and one hash chain. The collector remembers the last stream sequence it recorded
// (in LOG.nats, beside the log) and, on start, reads the event ids already in the log, so a
// restarted collector continues where it stopped and never records an event twice.
//
// This package is the only one of the module that imports nats.go.
package natsink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// Defaults of Config.
const (
	DefaultStream     = "TRUSTHANDOFF_AUDIT"
	DefaultSubject    = "trusthandoff.audit"
	DefaultAckTimeout = 5 * time.Second
	DefaultDuplicates = 2 * time.Minute // JetStream's own default window
)

// Config names the stream and bounds the wait for an acknowledgement. The zero value
// means the defaults.
type Config struct {
	// Stream is the JetStream stream's name (default DefaultStream).
	Stream string
	// Subject is the subject events are published on; the stream captures it
	// (default DefaultSubject).
	Subject string
	// AckTimeout bounds one Emit when its context has no earlier deadline
	// (default DefaultAckTimeout).
	AckTimeout time.Duration
	// Duplicates is the stream's duplicate window, used by EnsureStream when it creates
	// the stream (default DefaultDuplicates).
	Duplicates time.Duration
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Duplicates <= 0 {
		c.Duplicates = DefaultDuplicates
	}
	return c
}

// ConnectOptions are the nats.go options Connect uses: reconnect forever, and never buffer
// a publish while disconnected, so that an Emit during an outage fails at once instead of
// waiting for its timeout (and its event then being stored after Emit has failed).
func ConnectOptions() []nats.Option {
	return []nats.Option{
		nats.Name("trusthandoff-audit"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.Timeout(2 * time.Second),
	}
}

// Connect connects to the NATS server(s) at url (comma-separated) with ConnectOptions,
// followed by opts. Errors wrap audit.ErrUnavailable.
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append(ConnectOptions(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: nats connect: %w", audit.ErrUnavailable, err)
	}
	return nc, nil
}

// EnsureStream creates the stream when it does not exist: file storage, capturing
// cfg.Subject, with cfg.Duplicates as its duplicate window. An existing stream is left as
// it is (its limits are the operator's). Errors wrap audit.ErrUnavailable.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.withDefaults()
	st, err := js.Stream(ctx, cfg.Stream)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: nats stream %s: %w", audit.ErrUnavailable, cfg.Stream, err)
	}
	st, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   []string{cfg.Subject},
		Storage:    jetstream.FileStorage,
		Duplicates: cfg.Duplicates,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
		st, err = js.Stream(ctx, cfg.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: create nats stream %s: %w", audit.ErrUnavailable, cfg.Stream, err)
	}
	return st, nil
}

// Sink publishes audit events to a JetStream stream. It is safe for concurrent use.
type Sink struct {
	js  jetstream.JetStream
	cfg Config
}

var _ audit.Sink = (*Sink)(nil)

// New returns a Sink publishing through js. The stream must exist (see EnsureStream);
// Emit fails while it does not.
func New(js jetstream.JetStream, cfg Config) *Sink {
	return &Sink{js: js, cfg: cfg.withDefaults()}
}

// Emit publishes ev, bounded (see audit.Bound), as one JSON object (the line the file log
// would hold, without seq and prev_hash), and returns once JetStream has acknowledged
// storing it in the configured stream. The error wraps audit.ErrUnavailable when no
// acknowledgement came (server down, stream missing, timeout): the caller must treat the
// event as not recorded. Publishing again is safe: within the stream's duplicate window
// JetStream stores an event id once.
func (s *Sink) Emit(ctx context.Context, ev audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := audit.MarshalLine(ev)
	if err != nil {
		return fmt.Errorf("audit: event cannot be encoded: %w", err)
	}
	msg := nats.NewMsg(s.cfg.Subject)
	msg.Data = line[:len(line)-1]
	if id := MsgID(ev.EventID); id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(s.cfg.Stream)); err != nil {
		return fmt.Errorf("%w: nats publish to stream %s: %w", audit.ErrUnavailable, s.cfg.Stream, err)
	}
	return nil
}

// Ready reports whether an Emit could succeed now: the connection is up and the stream
// exists (one request to JetStream, bounded by ctx and AckTimeout). A sidecar's readiness
// probe calls it, so a node whose audit stream is gone is taken out of rotation instead of
// answering every verification 503. Errors wrap audit.ErrUnavailable.
func (s *Sink) Ready(ctx context.Context) error {
	if nc := s.js.Conn(); nc == nil || !nc.IsConnected() {
		return fmt.Errorf("%w: nats: not connected", audit.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	defer cancel()
	if _, err := s.js.Stream(ctx, s.cfg.Stream); err != nil {
		return fmt.Errorf("%w: nats stream %s: %w", audit.ErrUnavailable, s.cfg.Stream, err)
	}
	return nil
}

// MsgID returns the Nats-Msg-Id for an event id: the event id as bounded in the record
// (see audit.Bound) when it is printable ASCII without spaces, otherwise "sha256:" and the
// hex sha256 of that bounded id (a header value cannot hold line breaks or control
// characters). An empty event id has none, and is not deduplicated.
func MsgID(eventID string) string {
	id := audit.Bound(audit.Event{EventID: eventID}).EventID
	if id == "" {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			sum := sha256.Sum256([]byte(id))
			return "sha256:" + hex.EncodeToString(sum[:])
		}
	}
	return id
}
