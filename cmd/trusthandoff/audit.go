package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

func auditCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Check, checkpoint and prove the tamper-evident audit log written by verify --audit-log",
		Long: `The audit log is a JSONL file of hash-chained records (each names the hash of the one
before) over which a Merkle tree (RFC 6962) is kept; LOG.checkpoint beside it holds the
latest checkpoint of that tree (C2SP tlog-checkpoint) signed by the log key LOG.key (a
note signer key, created with mode 0600 on first use).`,
	}
	c.AddCommand(auditVerifyCmd(), auditCheckpointCmd(), auditProveCmd(), auditConsistencyCmd(), auditCollectCmd(), auditReportCmd())
	c.AddCommand(auditWitnessCmds()...)
	return c
}

// logKeyFlag is --log-key: a note verifier key, or a file holding one. When empty, the
// verifier is derived from the log's own signer key (LOG.key).
type logKeyFlag struct{ value string }

func (f *logKeyFlag) register(c *cobra.Command, what string) {
	c.Flags().StringVar(&f.value, "log-key", "", "the log's note verifier key (name+hash+key, as 'audit checkpoint --show-key' prints), or a file holding it"+what)
}

// verifier resolves the log's verifier; logPath "" means there is no log to take LOG.key from.
func (f *logKeyFlag) verifier(logPath string) (note.Verifier, error) {
	if f.value == "" {
		if logPath == "" {
			return nil, usageErr("--log-key is required")
		}
		s, err := audit.LoadKey(audit.KeyPath(logPath))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, usageErr("no log key: %s is missing; pass --log-key VKEY", audit.KeyPath(logPath))
		case errors.Is(err, audit.ErrUnavailable):
			return nil, unavailable(err)
		case err != nil:
			return nil, usageErr("%v", err)
		}
		v, err := audit.Verifier(s)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return v, nil
	}
	vkey := strings.TrimSpace(f.value)
	if v, err := note.NewVerifier(vkey); err == nil {
		return v, nil
	}
	data, err := readSmallFile(f.value, 4096)
	if err != nil {
		return nil, usageErr("--log-key is neither a verifier key nor a readable file holding one: %v", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, usageErr("--log-key %s: not a note verifier key", f.value)
	}
	return v, nil
}

// readSmallFile reads a regular file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// checkLogArg makes a missing or irregular LOG a usage error (exit 2).
func checkLogArg(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return usageErr("%v", err)
	}
	if !fi.Mode().IsRegular() {
		return usageErr("%s is not a regular file", path)
	}
	return nil
}

// readLogErr maps a failure to read a log: a broken chain is reported by the caller, the
// rest is unavailable (exit 3).
func readLogErr(err error) error {
	if errors.Is(err, audit.ErrBroken) {
		return &exitError{code: exitRejected, err: err}
	}
	return unavailable(err)
}

// readCheckpointArg reads a checkpoint file named on the command line: missing is a usage
// error.
func readCheckpointArg(path string) ([]byte, error) {
	data, err := audit.ReadCheckpointFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErr("%v", err)
	case errors.Is(err, audit.ErrCheckpoint):
		return nil, &exitError{code: exitRejected, err: err}
	case err != nil:
		return nil, unavailable(err)
	}
	return data, nil
}

// openLogCheckpoint verifies a signed checkpoint: it must carry a valid signature by the
// log key.
func openLogCheckpoint(data []byte, v note.Verifier) (audit.Checkpoint, *note.Note, error) {
	cp, n, err := audit.OpenCheckpoint(data, note.VerifierList(v))
	if err != nil {
		return cp, nil, err
	}
	if !audit.HasSignature(n, v) {
		return cp, nil, fmt.Errorf("%w: not signed by the log key %s", audit.ErrCheckpoint, v.Name())
	}
	return cp, n, nil
}

func checkpointJSON(c audit.Checkpoint) map[string]any {
	return map[string]any{"origin": c.Origin, "size": c.Size, "root": c.Root.String()}
}

func auditVerifyCmd() *cobra.Command {
	var cpFile string
	var noCheckpoint bool
	var key logKeyFlag
	var witnessKeys witnessKeysFlag
	c := &cobra.Command{
		Use:   "verify LOG",
		Short: "Check that an audit log is intact: no record edited, deleted, inserted, reordered or cut off",
		Long: `Check an audit log written by 'verify --audit-log' or 'exec --audit-log' as it stood when the
command started (writers appending meanwhile wait only for that instant):

  - the chain: sequence numbers count up from 1, each record names the hash of the one
    before, every record is a whole line;
  - the signed checkpoint (LOG.checkpoint, or --checkpoint CP): signed by the log key, it
    covers no more records than the log holds (else the newest were cut off), and the
    Merkle tree hash of that many records is the one signed (else a record, the newest
    included, was edited).

The log key is LOG.key (its verifier is derived from it) or --log-key VKEY. A log with
records and no checkpoint is broken (its tail could have been cut off) unless
--no-checkpoint is given, which checks the chain alone. Records appended after the
checkpoint (writers refresh it at least every second) are checked by the chain and
counted as "uncovered".

With --witness-key VKEY (repeatable) the checkpoint must also carry a valid cosignature
by each such witness (C2SP cosignature/v1, added by 'audit push'), so a log that shows
different histories to different readers, or whose tail was cut off and re-signed with
the log key, is caught. Run 'audit push' again after the log grows (writers refresh
LOG.checkpoint), or check a cosigned copy with --checkpoint.

Prints {"intact", "records", "last_hash", "checkpoint": {"origin", "size", "root"},
"uncovered", "witnesses": [{"name", "cosigned_at"}]}, and when broken "error" and, where it can be named, "first_broken" (the seq
of the first record that is edited, missing or out of place).
Exit codes: 0 intact; 1 broken (a record edited, deleted, inserted, reordered, cut short,
a line over 16 MiB, which no writer produces: every field taken from input is stored
bounded; records cut off; a checkpoint missing, not signed by the log key, or not
matching); 2 LOG (or CP) is missing or not a regular file, or no log key;
3 LOG cannot be locked or read.`,
		Example: `  trusthandoff audit verify /var/log/trusthandoff/audit.jsonl
  trusthandoff audit verify audit.jsonl --checkpoint saved.checkpoint --log-key "$(cat audit.vkey)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			v, err := verifyAuditLog(args[0], cpFile, noCheckpoint, &key, witnessKeys)
			if err != nil {
				return err
			}
			if err := printJSON(c, v.out); err != nil {
				return err
			}
			if v.broken != nil {
				return &exitError{code: exitRejected, err: v.broken}
			}
			return nil
		},
	}
	witnessKeys.register(c)
	c.Flags().StringVar(&cpFile, "checkpoint", "", "check against this signed checkpoint instead of LOG.checkpoint")
	c.Flags().BoolVar(&noCheckpoint, "no-checkpoint", false, "check the chain alone (cannot detect the newest records edited or removed)")
	key.register(c, " (default: derived from LOG.key)")
	return c
}

// logVerification is what 'audit verify' found of a log: out is its JSON output. When the
// log is broken, broken says how (out names the first broken record) and log is nil.
type logVerification struct {
	out       map[string]any
	log       *audit.Log
	cp        *audit.Checkpoint // the signed checkpoint checked, if any
	witnesses []map[string]any  // the cosignatures checked
	broken    error
}

// verifyAuditLog checks the log at path as 'audit verify' does (its --help says what).
// The error is a usage or I/O failure; a broken log is reported in the result.
func verifyAuditLog(path, cpFile string, noCheckpoint bool, key *logKeyFlag, witnessKeys witnessKeysFlag) (*logVerification, error) {
	if err := checkLogArg(path); err != nil {
		return nil, err
	}
	witnesses, err := witnessKeys.verifiers()
	if err != nil {
		return nil, err
	}
	l, stored, err := audit.ReadLogAndCheckpoint(path)
	if err != nil && !errors.Is(err, audit.ErrBroken) {
		return nil, unavailable(err)
	}
	out := map[string]any{"intact": false}
	res := &logVerification{out: out}
	fail := func(first uint64, err error) (*logVerification, error) {
		out["intact"] = false
		out["error"] = err.Error()
		if first > 0 {
			out["first_broken"] = first
		}
		res.broken, res.log = err, nil
		return res, nil
	}
	if err != nil {
		var be *audit.BrokenError
		first := uint64(0)
		if errors.As(err, &be) {
			first = max(be.Record, 1)
			out["records"] = first - 1
		}
		return fail(first, err)
	}
	res.log = l
	out["records"], out["last_hash"] = l.Size(), lastHash(l)
	if cpFile != "" {
		if stored, err = readCheckpointArg(cpFile); err != nil {
			return nil, err
		}
	}
	if noCheckpoint && cpFile == "" {
		out["intact"] = true
		return res, nil
	}
	if stored == nil {
		if l.Size() == 0 {
			out["intact"] = true
			return res, nil
		}
		return fail(0, fmt.Errorf("%w: %s is missing: the newest records and their removal cannot be checked (--no-checkpoint checks the chain alone)", audit.ErrBroken, audit.CheckpointPath(path)))
	}
	v, err := key.verifier(path)
	if err != nil {
		return nil, err
	}
	cp, _, err := openLogCheckpoint(stored, v)
	if err != nil {
		return fail(0, err)
	}
	out["checkpoint"] = checkpointJSON(cp)
	res.cp = &cp
	if cp.Size > l.Size() {
		return fail(l.Size()+1, fmt.Errorf("%w: the log holds %d records, its signed checkpoint covers %d: records %d-%d were removed", audit.ErrBroken, l.Size(), cp.Size, l.Size()+1, cp.Size))
	}
	root, err := l.Root(cp.Size)
	if err != nil {
		return nil, unavailable(err)
	}
	if root != cp.Root {
		if cp.Size == l.Size() {
			return fail(cp.Size, fmt.Errorf("%w: the first %d records do not match the signed checkpoint: record %d, the newest, was edited (or records before it rewritten with the chain recomputed)", audit.ErrBroken, cp.Size, cp.Size))
		}
		return fail(0, fmt.Errorf("%w: the first %d records do not match the signed checkpoint: records were rewritten with the chain recomputed", audit.ErrBroken, cp.Size))
	}
	if len(witnesses) > 0 {
		ws, err := checkCosignatures(stored, witnesses)
		if err != nil {
			return fail(0, err)
		}
		out["witnesses"], res.witnesses = ws, ws
	}
	out["intact"], out["uncovered"] = true, l.Size()-cp.Size
	return res, nil
}

// lastHash is the hex sha256 of the newest record line, as the chain names it.
func lastHash(l *audit.Log) string {
	if l.Size() == 0 {
		return ""
	}
	return audit.LineHash(l.Line(l.Size() - 1))
}

func auditCheckpointCmd() *cobra.Command {
	var showKey bool
	var keyFile string
	c := &cobra.Command{
		Use:   "checkpoint LOG",
		Short: "Print (and store) the signed checkpoint of an audit log as it stands",
		Long: `Verify the log (its chain and its stored checkpoint), sign a checkpoint of all its records with
the log key (LOG.key, or --key; created when the log has neither key nor checkpoint yet)
and store it in LOG.checkpoint, unless the stored one already covers every record (it is
then kept as it is, with any witness cosignatures).

Prints {"origin", "size", "root", "checkpoint"} (the signed note) and, with --show-key,
"log_key": the note verifier key (name+hash+key) that readers pass to --log-key.
Exit codes: 0 done; 1 the log is broken or does not match its stored checkpoint; 2 LOG
missing or the key unusable; 3 LOG or the checkpoint cannot be read or written.`,
		Example: `  trusthandoff audit checkpoint audit.jsonl --show-key
  trusthandoff audit checkpoint audit.jsonl | jq -r .checkpoint > saved.checkpoint`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			if err := checkLogArg(path); err != nil {
				return err
			}
			l, stored, err := audit.ReadLogAndCheckpoint(path)
			if err != nil {
				return readLogErr(err)
			}
			if keyFile == "" {
				keyFile = audit.KeyPath(path)
			}
			var signer note.Signer
			if stored == nil {
				signer, err = audit.LoadOrCreateKey(keyFile, audit.DefaultKeyName())
			} else {
				signer, err = audit.LoadKey(keyFile)
			}
			switch {
			case errors.Is(err, audit.ErrUnavailable):
				return unavailable(err)
			case err != nil:
				return usageErr("%v", err)
			}
			v, _ := audit.Verifier(signer)
			origin := signer.Name()
			if stored != nil {
				cp, _, err := openLogCheckpoint(stored, v)
				if err != nil {
					return &exitError{code: exitRejected, err: err}
				}
				if err := matches(l, cp); err != nil {
					return &exitError{code: exitRejected, err: err}
				}
				origin = cp.Origin
			}
			cp, err := l.Checkpoint(origin, l.Size())
			if err != nil {
				return unavailable(err)
			}
			signed, err := audit.SignCheckpoint(signer, cp)
			if err != nil {
				return usageErr("%v", err)
			}
			err = audit.UpdateCheckpointFile(path, func(cur []byte) ([]byte, error) {
				if cur == nil {
					return signed, nil
				}
				old, _, err := openLogCheckpoint(cur, v)
				if err != nil {
					return nil, &exitError{code: exitRejected, err: err}
				}
				if old.Size >= cp.Size {
					if old.Size == cp.Size && old.Root == cp.Root {
						signed = cur // keep it, cosignatures included
					}
					return nil, nil
				}
				return signed, nil
			})
			var ee *exitError
			switch {
			case errors.As(err, &ee):
				return err
			case err != nil:
				return unavailable(err)
			}
			out := checkpointJSON(cp)
			out["checkpoint"] = string(signed)
			if showKey {
				vkey, _ := audit.VerifierKey(signer)
				out["log_key"] = vkey
			}
			return printJSON(c, out)
		},
	}
	c.Flags().BoolVar(&showKey, "show-key", false, "also print the log's note verifier key")
	c.Flags().StringVar(&keyFile, "key", "", "the log's signer key file (default LOG.key)")
	return c
}

// matches checks that the log holds the records cp commits to.
func matches(l *audit.Log, cp audit.Checkpoint) error {
	if cp.Size > l.Size() {
		return fmt.Errorf("%w: the log holds %d records, its signed checkpoint covers %d: records %d-%d were removed", audit.ErrBroken, l.Size(), cp.Size, l.Size()+1, cp.Size)
	}
	root, err := l.Root(cp.Size)
	if err != nil {
		return err
	}
	if root != cp.Root {
		return fmt.Errorf("%w: the first %d records do not match the signed checkpoint", audit.ErrBroken, cp.Size)
	}
	return nil
}

func auditProveCmd() *cobra.Command {
	var cpFile string
	var verifyMode bool
	var key logKeyFlag
	c := &cobra.Command{
		Use:   "prove LOG EVENT_ID | prove --verify PROOF --log-key VKEY",
		Short: "Print an inclusion proof of one event against the log's signed checkpoint, or check one",
		Long: `prove LOG EVENT_ID prints a self-contained inclusion proof (` + audit.ProofVersion + `) of the
first record whose event_id is EVENT_ID: the record line, the signed checkpoint
(LOG.checkpoint, or --checkpoint CP) and the Merkle audit path between them. The log must
match the checkpoint and the record be covered by it.

prove --verify PROOF (a file, or - for stdin) checks such a proof offline against the
log's verifier key (--log-key) and prints {"valid", "event_id", "index", "checkpoint"}.

Exit codes: 0 proven / valid; 1 event not found or not covered, the log broken or not
matching, or (with --verify) the proof invalid; 2 usage (missing files, no key); 3 the log
cannot be read.`,
		Example: `  trusthandoff audit prove audit.jsonl 3f9c2a... > proof.json
  trusthandoff audit prove --verify proof.json --log-key "$(cat audit.vkey)"`,
		Args: func(c *cobra.Command, args []string) error {
			if verifyMode {
				return cobra.ExactArgs(1)(c, args)
			}
			return cobra.ExactArgs(2)(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if verifyMode {
				return verifyProof(c, args[0], &key)
			}
			path, id := args[0], args[1]
			if err := checkLogArg(path); err != nil {
				return err
			}
			l, stored, err := audit.ReadLogAndCheckpoint(path)
			if err != nil {
				return readLogErr(err)
			}
			if cpFile != "" {
				if stored, err = readCheckpointArg(cpFile); err != nil {
					return err
				}
			}
			if stored == nil {
				return &exitError{code: exitRejected, err: fmt.Errorf("%s is missing: run 'trusthandoff audit checkpoint %s'", audit.CheckpointPath(path), path)}
			}
			v, err := key.verifier(path)
			if err != nil {
				return err
			}
			cp, _, err := openLogCheckpoint(stored, v)
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			i, ok := l.Find(id)
			if !ok {
				return &exitError{code: exitRejected, err: fmt.Errorf("no record has event_id %q", id)}
			}
			p, err := l.Prove(i, stored, cp)
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			return printJSON(c, p)
		},
	}
	c.Flags().StringVar(&cpFile, "checkpoint", "", "prove against this signed checkpoint instead of LOG.checkpoint")
	c.Flags().BoolVar(&verifyMode, "verify", false, "check the proof in the file PROOF instead")
	key.register(c, " (default for proving: derived from LOG.key; required with --verify)")
	return c
}

func verifyProof(c *cobra.Command, file string, key *logKeyFlag) error {
	v, err := key.verifier("")
	if err != nil {
		return err
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(c.InOrStdin(), audit.MaxProofBytes+1))
	} else {
		data, err = readSmallFile(file, audit.MaxProofBytes+1)
	}
	if err != nil {
		return usageErr("%v", err)
	}
	out := map[string]any{"valid": false}
	p, err := audit.ParseProof(bytes.TrimSpace(data))
	var cp audit.Checkpoint
	if err == nil {
		out["event_id"], out["index"] = p.EventID, p.Index
		cp, err = p.Verify(v)
	}
	if err != nil {
		out["error"] = err.Error()
		if perr := printJSON(c, out); perr != nil {
			return perr
		}
		return &exitError{code: exitRejected, err: err}
	}
	out["valid"], out["checkpoint"] = true, checkpointJSON(cp)
	return printJSON(c, out)
}

func auditConsistencyCmd() *cobra.Command {
	var key logKeyFlag
	c := &cobra.Command{
		Use:   "consistency LOG OLD_CP [NEW_CP]",
		Short: "Prove that an older signed checkpoint is a prefix of a newer one (the log only grew)",
		Long: `Check that the log matches NEW_CP (default LOG.checkpoint), compute the RFC 6962 consistency
proof from OLD_CP's tree to NEW_CP's, and check it: the records OLD_CP committed to are
still the first records of the log, unchanged. Both checkpoints must be signed by the log
key (LOG.key, or --log-key).

Prints {"consistent", "old", "new", "proof"} (the proof as standard base64 hashes).
Exit codes: 0 consistent; 1 not (a rewritten or forked history, a checkpoint unsigned, or
OLD_CP larger than NEW_CP); 2 usage (missing files, no key); 3 the log cannot be read.`,
		Example: `  trusthandoff audit consistency audit.jsonl saved.checkpoint`,
		Args:    cobra.RangeArgs(2, 3),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			if err := checkLogArg(path); err != nil {
				return err
			}
			oldData, err := readCheckpointArg(args[1])
			if err != nil {
				return err
			}
			l, newData, err := audit.ReadLogAndCheckpoint(path)
			if err != nil {
				return readLogErr(err)
			}
			if len(args) == 3 {
				if newData, err = readCheckpointArg(args[2]); err != nil {
					return err
				}
			}
			if newData == nil {
				return &exitError{code: exitRejected, err: fmt.Errorf("%s is missing", audit.CheckpointPath(path))}
			}
			v, err := key.verifier(path)
			if err != nil {
				return err
			}
			out := map[string]any{"consistent": false}
			fail := func(err error) error {
				out["error"] = err.Error()
				if perr := printJSON(c, out); perr != nil {
					return perr
				}
				return &exitError{code: exitRejected, err: err}
			}
			oldCP, _, err := openLogCheckpoint(oldData, v)
			if err != nil {
				return fail(fmt.Errorf("OLD_CP: %w", err))
			}
			out["old"] = checkpointJSON(oldCP)
			newCP, _, err := openLogCheckpoint(newData, v)
			if err != nil {
				return fail(fmt.Errorf("NEW_CP: %w", err))
			}
			out["new"] = checkpointJSON(newCP)
			if err := matches(l, newCP); err != nil {
				return fail(fmt.Errorf("the log does not match NEW_CP: %w", err))
			}
			if oldCP.Size > newCP.Size {
				return fail(fmt.Errorf("%w: OLD_CP covers %d records, NEW_CP only %d", audit.ErrCheckpoint, oldCP.Size, newCP.Size))
			}
			proof, err := l.ConsistencyProof(oldCP.Size, newCP.Size)
			if err != nil {
				return unavailable(err)
			}
			out["proof"] = proof
			if err := audit.VerifyConsistency(oldCP, newCP, proof); err != nil {
				return fail(err)
			}
			out["consistent"] = true
			return printJSON(c, out)
		},
	}
	key.register(c, " (default: derived from LOG.key)")
	return c
}
