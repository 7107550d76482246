package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/natsink"
)

func auditCollectCmd() *cobra.Command {
	var (
		url, stream, subject, out string
		once                      bool
		batch                     int
		timeout                   time.Duration
	)
	c := &cobra.Command{
		Use:   "collect --nats URL --out LOG [--stream S] [--once]",
		Short: "Append the audit events of a NATS JetStream stream, in order, to one hash-chained log",
		Long: `Read the audit events that sidecars publish to a NATS JetStream stream and append each, in
stream order, to the hash-chained log LOG, so that the events of every node end up in one
log with one order. The stream is created (file storage, subject --subject) when missing.

The collector keeps the stream sequence of the last message it recorded in LOG.nats and,
on start, reads the event ids already in LOG: a collector stopped (or killed) and started
again continues where it stopped, and no event is recorded twice. Messages that are not
events are skipped and counted. Run one collector per log.

Without --once it runs until interrupted (SIGINT, SIGTERM), retrying while NATS is
unreachable; with --once it records what the stream holds now and exits.
Prints {"out", "stream", "recorded", "duplicates", "invalid", "position"} when it ends.
Exit codes: 0 done; 1 LOG's chain is broken (it is not appended to); 2 usage error;
3 NATS unreachable (with --once, or at start) or LOG cannot be written.`,
		Example: `  trusthandoff audit collect --nats nats://127.0.0.1:4222 --out /var/log/trusthandoff/cluster.jsonl
  trusthandoff audit collect --nats nats://127.0.0.1:4222 --stream TRUSTHANDOFF_AUDIT --out audit.jsonl --once
  trusthandoff audit verify audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if url == "" || out == "" {
				return usageErr("--nats and --out are required")
			}
			if batch <= 0 {
				return usageErr("--batch must be positive")
			}
			if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
				return usageErr("--out: %s is not a regular file", out)
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			nc, err := connectNATS("--nats", url)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return unavailable(fmt.Errorf("%w: %w", audit.ErrUnavailable, err))
			}
			cfg := natsink.CollectorConfig{
				Config: natsink.Config{Stream: stream, Subject: subject},
				Batch:  batch,
				Logger: slog.New(slog.NewTextHandler(c.ErrOrStderr(), nil)),
			}
			openCtx, cancel := context.WithTimeout(ctx, timeout)
			col, err := natsink.OpenCollector(openCtx, js, out, cfg)
			cancel()
			if err != nil {
				return collectErr(err)
			}
			defer col.Close()
			if once {
				dctx, cancel := context.WithTimeout(ctx, timeout)
				err = col.Drain(dctx)
				cancel()
			} else {
				err = col.Run(ctx)
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					err = nil // interrupted: a normal end
				}
			}
			st := col.Stats()
			if perr := printJSON(c, map[string]any{
				"out": out, "stream": streamName(stream), "recorded": st.Recorded,
				"duplicates": st.Duplicates, "invalid": st.Invalid, "position": st.Position,
			}); perr != nil {
				return perr
			}
			if err != nil {
				return collectErr(err)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&url, "nats", "", "NATS server URL(s), comma-separated (required)")
	fl.StringVar(&out, "out", "", "the hash-chained audit log to append to (required; created 0600)")
	fl.StringVar(&stream, "stream", natsink.DefaultStream, "JetStream stream to read")
	fl.StringVar(&subject, "subject", natsink.DefaultSubject, "subject the stream captures, if this command creates it")
	fl.BoolVar(&once, "once", false, "record what the stream holds now, then exit")
	fl.IntVar(&batch, "batch", natsink.DefaultBatch, "most messages fetched at once")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "bound on opening the stream and, with --once, on reading it")
	return c
}

func streamName(s string) string {
	if s == "" {
		return natsink.DefaultStream
	}
	return s
}

// collectErr maps a collector failure to the exit codes: 1 for a broken log, 3 for an
// unavailable log or NATS (a timeout included).
func collectErr(err error) error {
	switch {
	case errors.Is(err, audit.ErrBroken):
		return &exitError{code: exitRejected, err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable(fmt.Errorf("%w: %w", audit.ErrUnavailable, err))
	}
	return unavailable(err)
}
