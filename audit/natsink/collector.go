package natsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// Defaults of CollectorConfig.
const (
	DefaultBatch     = 256
	DefaultFetchWait = time.Second
)

// PositionSuffix names the file beside the log (LOG + PositionSuffix) in which a Collector
// keeps the stream sequence of the last message it recorded.
const PositionSuffix = ".nats"

// CollectorConfig configures a Collector. The zero value means the defaults.
type CollectorConfig struct {
	// Stream is the stream read (default DefaultStream). Config.Subject and
	// Config.Duplicates are used only if the collector creates the stream.
	Config
	// Batch is the most messages fetched at once (default DefaultBatch).
	Batch int
	// FetchWait is how long one fetch waits for messages to arrive (default
	// DefaultFetchWait).
	FetchWait time.Duration
	// Logger receives warnings (messages skipped as not events, NATS failures retried by
	// Run); nil discards them. Message contents are never logged.
	Logger *slog.Logger
}

// Stats counts what a Collector did since it was opened.
type Stats struct {
	Recorded   uint64 `json:"recorded"`   // events appended to the log
	Duplicates uint64 `json:"duplicates"` // messages whose event id the log already held
	Invalid    uint64 `json:"invalid"`    // messages skipped because they are not events
	Position   uint64 `json:"position"`   // stream sequence of the last message handled
}

// Collector reads a stream in order and appends every event to one hash-chained log. It is
// not safe for concurrent use: run one Collector per log.
type Collector struct {
	js      jetstream.JetStream
	cfg     CollectorConfig
	log     *audit.FileSink
	posPath string
	cons    jetstream.Consumer // nil: create from pos on the next fetch
	seen    map[string]struct{}
	stats   Stats
}

// ErrInvalidMessage is wrapped by DecodeEvent's errors: the message is not an event.
var ErrInvalidMessage = errors.New("natsink: message is not an audit event")

// OpenCollector opens (or creates) the log at path for the collector of cfg.Stream,
// creating the stream when missing (see EnsureStream). The existing log is verified (see
// audit.OpenFile); its event ids are read so that no event is recorded twice, and the
// position saved by a previous collector of this log and stream (LOG.nats) is the point
// the collector continues from (the start of the stream when there is none, or when the
// stream's last sequence is below it: the stream was recreated). Errors wrap
// audit.ErrBroken or audit.ErrUnavailable.
func OpenCollector(ctx context.Context, js jetstream.JetStream, path string, cfg CollectorConfig) (*Collector, error) {
	cfg.Config = cfg.Config.withDefaults()
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = DefaultFetchWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := EnsureStream(ctx, js, cfg.Config)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: nats stream %s info: %w", audit.ErrUnavailable, cfg.Stream, err)
	}
	log, err := audit.OpenFile(path)
	if err != nil {
		return nil, err
	}
	seen, err := readEventIDs(path)
	if err != nil {
		log.Close()
		return nil, err
	}
	c := &Collector{js: js, cfg: cfg, log: log, posPath: path + PositionSuffix, seen: seen}
	pos, err := readPosition(c.posPath, cfg.Stream)
	if err != nil {
		cfg.Logger.Warn("natsink: position unreadable; reading the stream from its start (events already in the log are skipped)", "file", c.posPath, "err", err)
	}
	if pos > info.State.LastSeq {
		cfg.Logger.Warn("natsink: saved position is past the stream's end (stream recreated?); reading it from its start", "stream", cfg.Stream, "position", pos, "last_seq", info.State.LastSeq)
		pos = 0
	}
	c.stats.Position = pos
	return c, nil
}

// Position returns the stream sequence of the last message handled (recorded, or skipped
// as a duplicate or as not an event).
func (c *Collector) Position() uint64 { return c.stats.Position }

// Stats returns the counts since the collector was opened.
func (c *Collector) Stats() Stats { return c.stats }

// Drain records every message the stream holds up to its last sequence at the time of the
// call, then returns. Errors wrap audit.ErrUnavailable (NATS or the log) or
// audit.ErrBroken (the log was tampered with meanwhile), or are ctx's.
func (c *Collector) Drain(ctx context.Context) error {
	st, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("%w: nats stream %s: %w", audit.ErrUnavailable, c.cfg.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: nats stream %s info: %w", audit.ErrUnavailable, c.cfg.Stream, err)
	}
	for c.stats.Position < info.State.LastSeq {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Ask for no more than remain, so the last fetch need not wait for messages that
		// are not coming.
		if err := c.fetch(ctx, int(min(uint64(c.cfg.Batch), info.State.LastSeq-c.stats.Position))); err != nil {
			return err
		}
	}
	return nil
}

// Run records messages as they arrive until ctx is done, then returns ctx's error. NATS
// failures are logged and retried (the stream keeps the messages meanwhile); a failure of
// the log (audit.ErrUnavailable, audit.ErrBroken) ends Run: nothing more is recorded.
func (c *Collector) Run(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.fetch(ctx, c.cfg.Batch)
		var ne *natsError
		switch {
		case err == nil:
			pause = 100 * time.Millisecond
			continue
		case !errors.As(err, &ne):
			return err
		}
		c.cfg.Logger.Warn("natsink: reading the stream failed; retrying", "stream", c.cfg.Stream, "err", ne.err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// Close closes the log.
func (c *Collector) Close() error { return c.log.Close() }

// natsError marks a failure on the NATS side, which Run retries.
type natsError struct{ err error }

func (e *natsError) Error() string {
	return fmt.Sprintf("%v: nats: %v", audit.ErrUnavailable, e.err)
}

func (e *natsError) Unwrap() []error { return []error{audit.ErrUnavailable, e.err} }

// fetch handles one batch of at most max messages. On any failure the consumer is dropped, so the next fetch
// starts again after the last message handled.
func (c *Collector) fetch(ctx context.Context, max int) (err error) {
	if c.cons == nil {
		occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if p := c.stats.Position; p > 0 {
			occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p+1
		}
		cons, err := c.js.OrderedConsumer(ctx, c.cfg.Stream, occ)
		if err != nil {
			return &natsError{err}
		}
		c.cons = cons
	}
	defer func() {
		if err != nil {
			c.cons = nil
		}
	}()
	batch, err := c.cons.Fetch(max, jetstream.FetchMaxWait(c.cfg.FetchWait))
	if err != nil {
		return &natsError{err}
	}
	start := c.stats.Position
	defer func() {
		if c.stats.Position == start {
			return
		}
		// The log is synced before the position is written, so the position never runs
		// ahead of the log; a lost or stale position only costs re-reading.
		if perr := writePosition(c.posPath, c.cfg.Stream, c.stats.Position); perr != nil {
			c.cfg.Logger.Warn("natsink: position not saved", "file", c.posPath, "err", perr)
		}
	}()
	for m := range batch.Messages() {
		if err != nil {
			continue // drain the channel
		}
		err = c.handle(ctx, m)
	}
	if err != nil {
		return err
	}
	if berr := batch.Error(); berr != nil {
		return &natsError{berr}
	}
	return nil
}

// handle records one message.
func (c *Collector) handle(ctx context.Context, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return &natsError{err}
	}
	seq := meta.Sequence.Stream
	if seq <= c.stats.Position {
		return nil // delivered again
	}
	ev, err := DecodeEvent(m.Data())
	switch {
	case err != nil:
		c.cfg.Logger.Warn("natsink: message skipped", "stream", c.cfg.Stream, "seq", seq, "err", err)
		c.stats.Invalid++
	case ev.EventID != "" && c.has(ev.EventID):
		c.stats.Duplicates++
	default:
		if err := c.log.Emit(context.WithoutCancel(ctx), ev); err != nil {
			return err
		}
		if ev.EventID != "" {
			c.seen[audit.Bound(audit.Event{EventID: ev.EventID}).EventID] = struct{}{}
		}
		c.stats.Recorded++
	}
	c.stats.Position = seq
	return nil
}

func (c *Collector) has(eventID string) bool {
	_, ok := c.seen[audit.Bound(audit.Event{EventID: eventID}).EventID]
	return ok
}

// DecodeEvent decodes a message published by Sink: one JSON object with exactly the
// fields of audit.Event (numbers kept as written), nothing after it, at most
// audit.MaxLineBytes long. Errors wrap ErrInvalidMessage.
func DecodeEvent(data []byte) (audit.Event, error) {
	var ev audit.Event
	if len(data) > audit.MaxLineBytes {
		return ev, fmt.Errorf("%w: %d bytes", ErrInvalidMessage, len(data))
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		return audit.Event{}, fmt.Errorf("%w: %s", ErrInvalidMessage, shortErr(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return audit.Event{}, fmt.Errorf("%w: data after the event", ErrInvalidMessage)
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("null")) {
		return audit.Event{}, fmt.Errorf("%w: null", ErrInvalidMessage)
	}
	return ev, nil
}

// shortErr keeps an error message short: JSON errors may quote the input.
func shortErr(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return msg
}

// readEventIDs returns the (bounded) event ids of the records in the log at path.
func readEventIDs(path string) (map[string]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	defer f.Close()
	seen := make(map[string]struct{})
	br := bufio.NewReaderSize(f, 64*1024)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return seen, nil
		}
		if err == io.EOF {
			// Another writer is appending this line right now: it is not ours, and
			// the file sink checks it before chaining onto it.
			return seen, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", audit.ErrUnavailable, path, err)
		}
		var rec struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("audit log %s: %w: record %d is not a JSON record", path, audit.ErrBroken, n)
		}
		if rec.EventID != "" {
			seen[rec.EventID] = struct{}{}
		}
	}
}

type position struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// readPosition returns the saved position for stream; 0 when there is none (or it is for
// another stream).
func readPosition(path, stream string) (uint64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var p position
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return 0, fmt.Errorf("not a position file: %s", shortErr(err))
	}
	if p.Stream != stream {
		return 0, nil
	}
	return p.Seq, nil
}

// writePosition replaces the position file atomically (temp file + rename). It is not
// synced: after a crash an older position (or none) only means re-reading messages the
// log already holds, which are then skipped by their event ids.
func writePosition(path, stream string, seq uint64) error {
	data, err := json.Marshal(position{Stream: stream, Seq: seq})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
