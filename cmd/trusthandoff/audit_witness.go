package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
)

// auditWitnessCmds are the witness commands under "audit": running a witness, making its
// key, and pushing a log's checkpoint to a witness.
func auditWitnessCmds() []*cobra.Command {
	return []*cobra.Command{auditWitnessCmd(), auditWitnessKeyCmd(), auditPushCmd()}
}

func auditWitnessKeyCmd() *cobra.Command {
	var name, out string
	c := &cobra.Command{
		Use:   "witness-key --name NAME --out FILE",
		Short: "Create a witness key (cosignature/v1, Ed25519) and print its verifier key",
		Long: `Create a new witness private key in FILE (mode 0600; an existing file is never
overwritten) and print {"name", "vkey", "key_file"}. NAME identifies the witness in its
cosignature lines; a schema-less URL such as witness.example.com/w1 is customary. Give
"vkey" to the readers that check cosignatures (audit verify --witness-key, audit push
--witness-key, or any C2SP tlog-witness client).`,
		Example: "  trusthandoff audit witness-key --name witness.example.com/w1 --out witness.key",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if name == "" || out == "" {
				return usageErr("--name and --out are required")
			}
			vkey, err := witness.WriteKeyFile(out, name)
			if err != nil {
				if errors.Is(err, witness.ErrBadKey) || errors.Is(err, fs.ErrExist) {
					return usageErr("%v", err)
				}
				return unavailable(err)
			}
			return printJSON(c, map[string]any{"name": name, "vkey": vkey, "key_file": out})
		},
	}
	c.Flags().StringVar(&name, "name", "", "the witness's name (no spaces, no '+')")
	c.Flags().StringVar(&out, "out", "", "where to write the private key (created 0600)")
	return c
}

func auditWitnessCmd() *cobra.Command {
	var listen, keyPath, stateDir string
	var logKeys []string
	var showKey bool
	c := &cobra.Command{
		Use:   "witness --listen ADDR --key KEY --log VKEY... --state DIR",
		Short: "Run a C2SP tlog-witness that cosigns the given logs' checkpoints",
		Long: `Serve POST /add-checkpoint (C2SP tlog-witness) on ADDR: a checkpoint of a known log
(one --log note verifier key per log key; the key's name is the log's origin) is cosigned
with a cosignature/v1 line only when it carries a valid signature by that log's key and a
consistency proof from the latest checkpoint this witness cosigned for that origin. The
witness therefore never cosigns two inconsistent histories of one log.

DIR keeps that latest checkpoint per log (written to a temporary file, synced and renamed
before the cosignature is sent), so the guarantee holds across restarts; one witness at a
time may use DIR. Refused requests that carry a valid log signature (a fork or a rollback)
are kept in DIR/evidence.

Once listening it prints one JSON line {"listening", "name", "vkey"} on stdout, then logs
one JSON line per request on stderr. SIGINT or SIGTERM stops it gracefully.
Exit codes: 0 stopped by a signal; 2 bad flags or key; 3 DIR or ADDR unavailable (DIR in use
by another witness included).`,
		Example: `  trusthandoff audit witness-key --name witness.example.com/w1 --out witness.key
  trusthandoff audit checkpoint audit.jsonl --show-key     # the log's verifier key
  trusthandoff audit witness --listen 127.0.0.1:7380 --key witness.key \
      --log 'trusthandoff/audit/1a2b+6c4d1a2f+AeK…' --state /var/lib/trusthandoff/witness`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if keyPath == "" {
				return usageErr("--key is required")
			}
			cosigner, err := witness.LoadKeyFile(keyPath)
			if err != nil {
				return keyFileErr("--key", err)
			}
			if showKey {
				return printJSON(c, map[string]any{"name": cosigner.Name(), "vkey": cosigner.VerifierKey()})
			}
			if listen == "" || stateDir == "" || len(logKeys) == 0 {
				return usageErr("--listen, --state and at least one --log are required")
			}
			var logs []note.Verifier
			for _, k := range logKeys {
				v, err := note.NewVerifier(k)
				if err != nil {
					return usageErr("--log %q: %v", k, err)
				}
				logs = append(logs, v)
			}
			lg := slog.New(slog.NewJSONHandler(c.ErrOrStderr(), nil))
			srv, err := witness.NewServer(witness.Config{Cosigner: cosigner, Logs: logs, StateDir: stateDir, Logger: lg})
			if err != nil {
				return unavailable(err)
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return unavailable(err)
			}
			line, _ := json.Marshal(map[string]any{"listening": ln.Addr().String(), "name": cosigner.Name(), "vkey": cosigner.VerifierKey()})
			fmt.Fprintf(c.OutOrStdout(), "%s\n", line)
			return serveWitness(c.Context(), ln, srv, lg)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:7380", "address to listen on (host:port; port 0 picks a free one)")
	c.Flags().StringVar(&keyPath, "key", "", "the witness private key file (see audit witness-key)")
	c.Flags().StringArrayVar(&logKeys, "log", nil, "note verifier key of a log to witness (repeatable)")
	c.Flags().StringVar(&stateDir, "state", "", "directory holding the witness's state (created 0700)")
	c.Flags().BoolVar(&showKey, "show-key", false, "print the witness's name and verifier key and exit")
	return c
}

// serveWitness serves until SIGINT or SIGTERM, then drains for up to 5 seconds.
func serveWitness(ctx context.Context, ln net.Listener, h http.Handler, lg *slog.Logger) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return unavailable(err)
	case <-ctx.Done():
	}
	lg.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return unavailable(err)
	}
	return nil
}

// keyFileErr maps a key loading failure: 3 when the file cannot be read, 2 otherwise.
func keyFileErr(flag string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.Is(err, fs.ErrNotExist) {
		return unavailable(fmt.Errorf("%s: %w", flag, err))
	}
	return usageErr("%s: %v", flag, err)
}

func auditPushCmd() *cobra.Command {
	var url, vkey, cpPath, outPath string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "push LOG --witness URL --witness-key VKEY",
		Short: "Have a witness cosign the log's checkpoint and store the cosignature",
		Long: `Submit the log's signed checkpoint (LOG.checkpoint, or --checkpoint CP) to the C2SP
tlog-witness at URL (its submission prefix: the request goes to URL/add-checkpoint), with
the consistency proof from the size the witness last cosigned, computed from LOG. The
witness's cosignature/v1 line is checked against VKEY and added to the checkpoint note in
the file it was read from (LOG.checkpoint is rewritten atomically under the log's lock;
should a writer have refreshed it meanwhile, the newer checkpoint is pushed instead) and to
--out FILE if given, which keeps it when writers later refresh LOG.checkpoint.

Prints {"witness", "origin", "size", "old_size", "cosigned_at", "checkpoint"}.
Exit codes: 0 cosigned and stored; 1 refused: the log does not match its checkpoint, or the
witness has seen another history (fork), a larger tree (rollback) or does not accept the
log, or its answer holds no valid cosignature by VKEY; 2 usage; 3 the log, the checkpoint
or the witness is unavailable.`,
		Example: `  trusthandoff audit push audit.jsonl --witness http://127.0.0.1:7380 \
      --witness-key 'witness.example.com/w1+7a3c9f01+BGx…'
  trusthandoff audit verify audit.jsonl --witness-key 'witness.example.com/w1+7a3c9f01+BGx…'`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if url == "" || vkey == "" {
				return usageErr("--witness and --witness-key are required")
			}
			wv, err := witness.NewCosignatureVerifier(vkey)
			if err != nil {
				return usageErr("--witness-key: %v", err)
			}
			logPath := args[0]
			if fi, err := os.Stat(logPath); err != nil || !fi.Mode().IsRegular() {
				return usageErr("%s is not a readable regular file", logPath)
			}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res, err := pushLog(ctx, logPath, cpPath, url, wv)
			if err != nil {
				return err
			}
			if outPath != "" {
				if err := atomicfile.Write(outPath, res.Cosigned, 0o644); err != nil {
					return unavailable(err)
				}
			}
			at, _ := witnessCosignedAt(res.Cosigned, wv)
			return printJSON(c, map[string]any{
				"witness": wv.Name(), "origin": res.Checkpoint.Origin, "size": res.Checkpoint.Size,
				"old_size": res.OldSize, "cosigned_at": at.Format(time.RFC3339), "checkpoint": res.Stored,
			})
		},
	}
	c.Flags().StringVar(&url, "witness", "", "the witness's submission URL prefix")
	c.Flags().StringVar(&vkey, "witness-key", "", "the witness's cosignature/v1 verifier key")
	c.Flags().StringVar(&cpPath, "checkpoint", "", "the signed checkpoint to push (default LOG.checkpoint)")
	c.Flags().StringVar(&outPath, "out", "", "also write the cosigned checkpoint to this file")
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return c
}

// pushLog pushes through witness.PushLog and maps its errors to exit codes: 2 for a
// missing checkpoint, 3 when the log, its checkpoint or the witness is unavailable, 1
// for every refusal.
func pushLog(ctx context.Context, logPath, cpPath, url string, wv *witness.Verifier) (*witness.LogPush, error) {
	res, err := witness.PushLog(ctx, url, wv, logPath, cpPath)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, fs.ErrNotExist):
		if cpPath == "" {
			cpPath = audit.CheckpointPath(logPath)
		}
		return nil, usageErr("%s: no checkpoint (a log written by this version keeps one beside it)", cpPath)
	case errors.Is(err, witness.ErrUnavailable), errors.Is(err, audit.ErrUnavailable):
		return nil, unavailable(err)
	}
	return nil, &exitError{code: exitRejected, err: err}
}

// witnessCosignedAt returns the time of wv's cosignature on the checkpoint note signed.
func witnessCosignedAt(signed []byte, wv *witness.Verifier) (time.Time, error) {
	n, err := note.Open(signed, note.VerifierList(wv))
	if err != nil {
		return time.Time{}, err
	}
	at, ok := witness.CosignedAt(n, wv)
	if !ok {
		return time.Time{}, errors.New("no cosignature")
	}
	return at, nil
}

// witnessKeysFlag is audit verify's --witness-key: cosignature/v1 verifier keys of
// witnesses that must have cosigned the checkpoint.
type witnessKeysFlag []string

func (f *witnessKeysFlag) register(c *cobra.Command) {
	c.Flags().StringArrayVar((*[]string)(f), "witness-key", nil,
		"require a valid cosignature by this witness (cosignature/v1 verifier key, as 'audit witness-key' prints; repeatable)")
}

func (f witnessKeysFlag) verifiers() ([]*witness.Verifier, error) {
	var vs []*witness.Verifier
	for _, k := range f {
		v, err := witness.NewCosignatureVerifier(k)
		if err != nil {
			return nil, usageErr("--witness-key %q: %v", k, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// checkCosignatures requires a valid cosignature by every witness on the signed
// checkpoint note, and returns [{"name", "cosigned_at"}].
func checkCosignatures(signed []byte, ws []*witness.Verifier) ([]map[string]any, error) {
	vs := make([]note.Verifier, len(ws))
	for i, w := range ws {
		vs[i] = w
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		return nil, fmt.Errorf("%w: the checkpoint carries no cosignature by %s", audit.ErrBroken, ws[0].Name())
	case err != nil:
		return nil, fmt.Errorf("%w: witness cosignature: %v", audit.ErrBroken, err)
	}
	var out []map[string]any
	for _, w := range ws {
		at, ok := witness.CosignedAt(n, w)
		if !ok {
			return nil, fmt.Errorf("%w: the checkpoint carries no cosignature by %s", audit.ErrBroken, w.Name())
		}
		out = append(out, map[string]any{"name": w.Name(), "cosigned_at": at.Format(time.RFC3339)})
	}
	return out, nil
}
