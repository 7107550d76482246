package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// execResult is exec's machine output: the decision, plus what happened to the command.
type execResult struct {
	*verify.Decision
	Ran         bool   `json:"ran"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Invalidated string `json:"invalidated,omitempty"` // reason code that stopped the command
	// With --receipt: the file written, the status it reports, and the reason bytes its
	// reason_hash covers, as a string (give them to 'receipt verify --reason').
	Receipt       string `json:"receipt,omitempty"`
	ReceiptStatus string `json:"receipt_status,omitempty"`
	ReceiptReason string `json:"receipt_reason,omitempty"`
}

// maxOutcomeBytes bounds the --outcome-file exec hashes into a receipt.
const maxOutcomeBytes = 64 << 20

// exitCommandFailed: the handoff was accepted, but the command failed: it exited non-zero,
// a signal ended it, or it could not be started.
const exitCommandFailed = 4

// approvalPoll is how often exec, while a handoff waits for approvals, looks at ENVELOPE
// for approvals added to it.
const approvalPoll = 200 * time.Millisecond

func execCmd() *cobra.Command {
	var f verifyFlags
	var waitApproval, killAfter time.Duration
	var receiptOut, outcomeFile string
	var executor executorFlags
	c := &cobra.Command{
		Use:   "exec [--registry REG] [--state DIR | --redis URL] [flags] ENVELOPE -- COMMAND [ARG...]",
		Short: "Verify a handoff and run a command under it, stopping the command when the handoff lapses",
		Long: `Verify ENVELOPE through the whole pipeline (as 'verify' does, with the same flags: --policy
FILE for the receiver's policy, --as AGENT to refuse packets addressed to anyone else) and,
if it is accepted, run COMMAND under it. The command runs in a process group of its own, and exec ends the whole
group (the command and everything it started) the moment the packet or any capability in
its chain expires, or, with --redis, the moment any of them or the sender is revoked on any
node (revocations are pushed, not polled): SIGTERM, then SIGKILL after --kill-after. The
group is ended the same way when exec gets SIGINT, SIGTERM or SIGHUP, when the command
exits and leaves processes behind, and when exec itself dies (kill -9 included): a small
supervisor process watches exec. On Windows the command runs in a job object instead,
which the system terminates when exec dies. A process that leaves the group on purpose
(setsid) is out of reach; contain hostile commands with a container or cgroup.

A handoff that requires human review waits up to --wait-approval for approvals. While it
waits, exec re-reads ENVELOPE (which must then be a file) and counts the valid approvals
found in it: write the output of 'trusthandoff approve' over it (atomically: to a temporary
file, then rename). The wait holds no lock on the --state directory: exec opens it only
for each verification, so 'verify' and 'revoke' keep working on it meanwhile, and a
revocation made during the wait is seen by the next verification.

With --state, revocations made while the command runs are not seen (a state directory
pushes nothing to other processes); use --redis to enforce them.

The command inherits stdin, stdout and stderr (and the terminal's foreground), and gets
TRUSTHANDOFF_PACKET_ID, TRUSTHANDOFF_FROM_AGENT, TRUSTHANDOFF_TO_AGENT and
TRUSTHANDOFF_ACTIONS (the packet's allowed_actions as a JSON array, e.g. ["read_tickets"]).
When it ends, exec prints {"decision", "reason", "packet_id", "detail", "ran",
"exit_code", "invalidated"} on stdout.

With --receipt FILE exec also writes the execution receipt the executor signs with
--receipt-key; it implies --as EXECUTOR (the key's agent, or --receipt-agent-id), so a
packet addressed to anyone else is rejected wrong_recipient and the command does not run.
The receipt's status is OK when the command exited 0, ERROR when it failed, TIMEOUT when
the handoff expired while it ran, REJECTED when the handoff was refused or revoked; the
outcome it hashes is the content of --outcome-file (which the command writes; empty when
none is given or the file is missing), and the bytes of its reason are printed as the
string "receipt_reason" (give both to 'trusthandoff receipt verify'). No receipt is written for an envelope that does
not parse or is addressed to someone else.

Exit codes:
  0  the handoff was accepted and the command exited 0
  1  rejected (the command did not run), or the command was stopped because the handoff
     lapsed ("invalidated" says why)
  2  usage error
  3  store unavailable
  4  the handoff was accepted but the command failed: it exited non-zero ("exit_code"),
     a signal ended it (exit_code -1), it could not be started ("ran": false), or exec
     was interrupted (SIGINT, SIGTERM, SIGHUP) and stopped it`,
		Example: `  trusthandoff exec --registry reg.json --redis redis://127.0.0.1:6379/0 env.json -- ./summarize.sh
  trusthandoff exec --registry reg.json approved.json -- python3 agent.py --task refund
  trusthandoff exec --registry reg.json --wait-approval 10m env.json -- ./refund.sh &
  trusthandoff exec --registry reg.json --receipt out.receipt --receipt-key bob.key --outcome-file out.txt env.json -- sh -c './summarize.sh > out.txt'
  trusthandoff approve --key olga.key --envelope env.json > env.tmp && mv env.tmp env.json`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 1 {
				return usageErr("usage: exec [flags] ENVELOPE -- COMMAND [ARG...]")
			}
			if f.maxBytes <= 0 {
				return usageErr("--max-bytes must be positive")
			}
			if waitApproval < 0 {
				return usageErr("--wait-approval must not be negative")
			}
			if killAfter < 0 {
				return usageErr("--kill-after must not be negative")
			}
			if waitApproval > 0 && args[0] == "-" {
				return usageErr("--wait-approval re-reads ENVELOPE for approvals: give a file, not stdin")
			}
			var signer *identity.KeySigner
			var signAs string
			switch {
			case receiptOut != "":
				if executor.key == "" {
					return usageErr("--receipt needs --receipt-key (the executor's key)")
				}
				var err error
				if signer, signAs, err = executor.signer(); err != nil {
					return err
				}
				// The executor signs only for packets addressed to it: bind the recipient,
				// so that any other packet is rejected before the command runs.
				if !c.Flags().Changed("as") {
					if err := c.Flags().Set("as", signAs); err != nil {
						return usageErr("--as: %v", err)
					}
				} else if f.as != signAs {
					return usageErr("--as %s is not the receipt's executor %s", f.as, signAs)
				}
			case executor.key != "" || executor.agentID != "" || outcomeFile != "":
				return usageErr("--receipt-key, --receipt-agent-id and --outcome-file go with --receipt")
			}
			data, err := readInput(c, args[:1], int64(f.maxBytes))
			if err != nil {
				return err
			}
			onDemand := f.state.redisURL == ""
			f.state.onDemand = onDemand
			v, st, closeAudit, err := f.build(c, data)
			if err != nil {
				return err
			}
			defer closeAudit()
			defer st.Close()

			revocations := st.revocations
			if onDemand {
				fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: with --state, revocations made while the command runs are not seen; use --redis to enforce them")
				revocations = revocation.NewMemory(revocation.MemoryConfig{})
			}
			g, err := gate.New(v, revocations, gate.WithApprovalWait(waitApproval))
			if err != nil {
				return usageErr("%v", err)
			}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			// These signals to exec end the command the same way a lapsed handoff does.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()

			feedCtx, stopFeed := context.WithCancel(ctx)
			defer stopFeed()
			if waitApproval > 0 {
				fd := &approvalFeed{g: g, file: args[0], maxBytes: f.maxBytes, wait: waitApproval, stderr: c.ErrOrStderr(), release: func() {}}
				if onDemand {
					fd.release = func() { _ = st.Close() }
				}
				go fd.run(feedCtx, data)
			}

			res := execResult{}
			run := func(runCtx context.Context, d *verify.Decision) error {
				stopFeed()
				if onDemand {
					_ = st.Close() // the verification is over: release the state directory
				}
				started, code, err := runContained(runCtx, argv(c, args), commandEnv(d.Envelope.Packet), killAfter)
				res.Ran, res.ExitCode = started, code
				return err
			}
			var d *verify.Decision
			var werr error // the receipt could not be written
			if signer == nil {
				d, err = g.Execute(ctx, data, run)
			} else {
				d, err, werr = execWithReceipt(ctx, g, signer, signAs, data, run, &res, receiptOut, outcomeFile, c.ErrOrStderr())
			}
			res.Decision = d
			if d == nil {
				res.Decision = &verify.Decision{Decision: verify.Reject, Reason: reason.Of(err, reason.StoreUnavailable)}
			}
			if errors.Is(err, gate.ErrInvalidated) {
				res.Invalidated = string(reason.Of(err, reason.PolicyDenied))
			}
			if perr := printJSON(c, res); perr != nil {
				return perr
			}
			if werr != nil {
				return unavailable(werr)
			}
			switch {
			case res.Invalidated != "":
				return &exitError{code: exitRejected, err: fmt.Errorf("command stopped: %s", res.Invalidated)}
			case !res.Decision.Accepted():
				return decisionExit(res.Decision)
			case res.ExitCode == nil:
				if err == nil {
					err = errors.New("command stopped: exec was interrupted")
				}
				return &exitError{code: exitCommandFailed, err: err}
			case *res.ExitCode != 0:
				return &exitError{code: exitCommandFailed}
			case err != nil: // it exited 0, but its outcome could not be read (--outcome-file)
				return &exitError{code: exitCommandFailed, err: err}
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().DurationVar(&waitApproval, "wait-approval", 0, "how long a handoff that needs review waits for approvals added to ENVELOPE (0: do not wait)")
	c.Flags().DurationVar(&killAfter, "kill-after", 5*time.Second, "SIGKILL what is left of the command's process group this long after SIGTERM")
	c.Flags().StringVar(&receiptOut, "receipt", "", "write the signed execution receipt of the run to this file")
	c.Flags().StringVar(&executor.key, "receipt-key", "", "with --receipt: the executor's private key file (mode 0600)")
	c.Flags().StringVar(&executor.agentID, "receipt-agent-id", "", "with --receipt: the executor's registered agent id, when it is not the key's own (after a key rotation)")
	c.Flags().StringVar(&outcomeFile, "outcome-file", "", "with --receipt: the file the command writes its result to; the receipt hashes its content")
	return c
}

// argv is the command after "--".
func argv(c *cobra.Command, args []string) []string { return args[c.ArgsLenAtDash():] }

// commandEnv is exec's environment plus the handoff.
func commandEnv(p *packet.Packet) []string {
	return append(os.Environ(),
		"TRUSTHANDOFF_PACKET_ID="+p.PacketID,
		"TRUSTHANDOFF_FROM_AGENT="+p.FromAgent,
		"TRUSTHANDOFF_TO_AGENT="+p.ToAgent,
		"TRUSTHANDOFF_ACTIONS="+actionsJSON(p.Permissions.AllowedActions),
	)
}

// actionsJSON is the JSON array of actions ([] for none), with no HTML escaping: the
// command parses it as JSON, and an action name may hold any character.
func actionsJSON(actions []string) string {
	if actions == nil {
		actions = []string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(actions); err != nil {
		return "[]" // not reached: strings always encode
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// approvalFeed delivers to the gate the approvals added to the envelope file while its
// handoff waits.
type approvalFeed struct {
	g        *gate.Gate
	file     string
	maxBytes int
	wait     time.Duration // for the message
	stderr   io.Writer
	release  func() // releases the state directory between verifications
}

// run polls the file until ctx ends. initial is the envelope exec started with: its
// approvals are already counted.
func (fd *approvalFeed) run(ctx context.Context, initial []byte) {
	done := map[string]bool{}   // approvals delivered or refused, by signature
	warned := map[string]bool{} // malformed approvals reported, by error
	if env, err := packet.ParseEnvelope(initial, canonical.Limits{MaxBytes: fd.maxBytes}); err == nil {
		for i := range env.Approvals {
			if a, err := approval.FromValue(&env.Approvals[i]); err == nil {
				done[a.Signature] = true
			}
		}
	}
	var last os.FileInfo
	retry, told := false, false
	t := time.NewTicker(approvalPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pend := fd.g.Pending()
		if len(pend) == 0 {
			continue // not waiting (yet)
		}
		fd.release() // the handoff waits: hold nothing meanwhile
		if !told {
			told = true
			fmt.Fprintf(fd.stderr, "trusthandoff: packet %s needs approval: waiting up to %v for approvals added to %s (packet digest %s)\n",
				pend[0].PacketID, fd.wait, fd.file, pend[0].PacketDigest)
		}
		fi, err := os.Stat(fd.file)
		if err != nil || !fi.Mode().IsRegular() {
			continue // gone for a moment (being replaced), or a pipe that cannot be re-read
		}
		if !retry && last != nil && fi.ModTime().Equal(last.ModTime()) && fi.Size() == last.Size() && os.SameFile(fi, last) {
			continue
		}
		last, retry = fi, false
		env, err := fd.read()
		if err != nil {
			continue // perhaps half written: read again when it changes
		}
		for i := range env.Approvals {
			a, err := approval.FromValue(&env.Approvals[i])
			if err != nil {
				if !warned[err.Error()] {
					warned[err.Error()] = true
					fmt.Fprintf(fd.stderr, "trusthandoff: warning: %s: an approval is malformed: %v\n", fd.file, err)
				}
				continue
			}
			if done[a.Signature] {
				continue
			}
			err = fd.g.Submit(ctx, a)
			fd.release()
			switch {
			case err == nil:
				done[a.Signature] = true
			case errors.Is(err, gate.ErrNotPending):
				if a.PacketDigest == pend[0].PacketDigest {
					retry = true // the handoff is between two verifications: try again
				} else {
					done[a.Signature] = true
					fmt.Fprintf(fd.stderr, "trusthandoff: warning: %s: approval %s is for another packet\n", fd.file, a.ApprovalID)
				}
			case ctx.Err() != nil:
				return
			default:
				done[a.Signature] = true
				fmt.Fprintf(fd.stderr, "trusthandoff: warning: %s: approval %s does not count: %v\n", fd.file, a.ApprovalID, err)
			}
		}
	}
}

// read reads and parses the envelope file, bounded by maxBytes.
func (fd *approvalFeed) read() (*packet.Envelope, error) {
	fh, err := os.Open(fd.file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(fd.maxBytes)+1))
	if err != nil {
		return nil, err
	}
	return packet.ParseEnvelope(b, canonical.Limits{MaxBytes: fd.maxBytes})
}

// execWithReceipt runs the command through receipt.Run, so that what came of it is
// receipted as the library does it, and writes the receipt to out. The command's failure
// (a non-zero exit) is the task's error, so the receipt says ERROR.
func execWithReceipt(ctx context.Context, g *gate.Gate, s identity.Signer, executor string, data []byte,
	run func(context.Context, *verify.Decision) error, res *execResult, out, outcomeFile string, stderr io.Writer) (d *verify.Decision, err, writeErr error) {
	task := func(runCtx context.Context, d *verify.Decision) ([]byte, error) {
		err := run(runCtx, d)
		if err == nil && res.ExitCode != nil && *res.ExitCode != 0 {
			err = fmt.Errorf("the command exited with status %d", *res.ExitCode)
		}
		if err == nil && res.ExitCode == nil && runCtx.Err() == nil {
			err = errors.New("the command did not finish")
		}
		outcome, oerr := readOutcome(outcomeFile)
		return outcome, errors.Join(err, oerr)
	}
	rr, rc, err := receipt.Run(ctx, g, s, data, task, receipt.WithExecutor(executor))
	if rr != nil {
		d = rr.Decision
	}
	if rc == nil {
		if d != nil && d.Envelope != nil {
			fmt.Fprintf(stderr, "trusthandoff: warning: no receipt written: %v\n", err)
		}
		return d, err, nil
	}
	wire, werr := rc.MarshalJSON()
	if werr == nil {
		werr = atomicfile.Write(out, append(wire, '\n'), 0o644)
	}
	if werr != nil {
		return d, err, fmt.Errorf("--receipt: %w", werr)
	}
	res.Receipt, res.ReceiptStatus, res.ReceiptReason = out, string(rr.Status), string(rr.Reason)
	return d, err, nil
}

// readOutcome reads the outcome file (nothing when none is given or it does not exist).
func readOutcome(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path) // before opening: opening a FIFO would block
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--outcome-file: %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--outcome-file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--outcome-file: %s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxOutcomeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--outcome-file: %w", err)
	}
	if len(b) > maxOutcomeBytes {
		return nil, fmt.Errorf("--outcome-file: larger than %d bytes", maxOutcomeBytes)
	}
	return b, nil
}
