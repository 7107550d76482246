package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// execResult is exec's machine output: the decision, plus what happened to the command.
type execResult struct {
	*verify.Decision
	Ran         bool   `json:"ran"`
	ExitCode    *int   `json:"exit_code,omitempty"`
	Invalidated string `json:"invalidated,omitempty"` // reason code that stopped the command
}

func execCmd() *cobra.Command {
	var f verifyFlags
	var waitApproval, killAfter time.Duration
	c := &cobra.Command{
		Use:   "exec [--registry REG] [--state DIR | --redis URL] [flags] ENVELOPE -- COMMAND [ARG...]",
		Short: "Verify a handoff and run a command under it, stopping the command when the handoff lapses",
		Long: `Verify ENVELOPE through the whole pipeline (as 'verify' does) and, if it is accepted, run
COMMAND under it. The command gets SIGTERM (then SIGKILL after --kill-after) the moment the
packet or any capability in its chain expires, or, with --redis, the moment any of them or
the sender is revoked on any node (revocations are pushed, not polled). A handoff that
requires human review waits up to --wait-approval for approvals (attach them with
'trusthandoff approve' first, or run exec inside a service that submits them).

With --state, revocations made while the command runs are not seen (the embedded store is
single-process and is released before the command starts); use --redis to enforce them.

The command inherits stdin, stdout and stderr, and gets TRUSTHANDOFF_PACKET_ID,
TRUSTHANDOFF_FROM_AGENT, TRUSTHANDOFF_TO_AGENT and TRUSTHANDOFF_ACTIONS. When it ends,
exec prints {"decision", "reason", "packet_id", "detail", "ran", "exit_code",
"invalidated"} on stdout. Exit: 0 the command ran and succeeded; 1 rejected, or stopped
because the handoff lapsed; 2 usage error; 3 store unavailable; 4 the command failed.`,
		Example: `  trusthandoff exec --registry reg.json --redis redis://127.0.0.1:6379/0 env.json -- ./summarize.sh
  trusthandoff exec --registry reg.json approved.json -- python3 agent.py --task refund`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 1 {
				return usageErr("usage: exec [flags] ENVELOPE -- COMMAND [ARG...]")
			}
			if f.maxBytes <= 0 {
				return usageErr("--max-bytes must be positive")
			}
			data, err := readInput(c, args[:1], int64(f.maxBytes))
			if err != nil {
				return err
			}
			v, st, closeAudit, err := f.build(c, data)
			if err != nil {
				return err
			}
			defer closeAudit()
			var closeOnce sync.Once
			closeState := func() { closeOnce.Do(func() { st.Close() }) }
			defer closeState()

			revocations := st.revocations
			if f.state.redisURL == "" {
				fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: with --state, revocations made while the command runs are not seen; use --redis to enforce them")
				revocations = revocation.NewMemory(revocation.MemoryConfig{})
			}
			if waitApproval < 0 {
				return usageErr("--wait-approval must not be negative")
			}
			g := gate.New(v, revocations, gate.WithApprovalWait(waitApproval))
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			// SIGINT/SIGTERM to exec stop the command the same way a lapsed handoff does.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()

			res := execResult{}
			d, err := g.Execute(ctx, data, func(runCtx context.Context, d *verify.Decision) error {
				if f.state.redisURL == "" {
					closeState() // release the single-process store before the command runs
				}
				res.Ran = true
				code, err := runCommand(runCtx, d, args[1:], killAfter)
				res.ExitCode = code
				return err
			})
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
			switch {
			case res.Invalidated != "":
				return &exitError{code: exitRejected, err: fmt.Errorf("command stopped: %s", res.Invalidated)}
			case !res.Decision.Accepted():
				return decisionExit(res.Decision)
			case res.ExitCode == nil:
				return &exitError{code: exitCommandFailed, err: err}
			case *res.ExitCode != 0:
				return &exitError{code: exitCommandFailed}
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().DurationVar(&waitApproval, "wait-approval", 0, "how long a handoff that needs review waits for approvals (0: do not wait)")
	c.Flags().DurationVar(&killAfter, "kill-after", 5*time.Second, "SIGKILL the command this long after SIGTERM")
	return c
}

// exitCommandFailed: the handoff was accepted and the command ran, but failed.
const exitCommandFailed = 4

// runCommand runs argv until it exits or ctx is cancelled (SIGTERM, then SIGKILL after
// killAfter). It returns the command's exit code when it exited on its own.
func runCommand(ctx context.Context, d *verify.Decision, argv []string, killAfter time.Duration) (*int, error) {
	p := d.Envelope.Packet
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"TRUSTHANDOFF_PACKET_ID="+p.PacketID,
		"TRUSTHANDOFF_FROM_AGENT="+p.FromAgent,
		"TRUSTHANDOFF_TO_AGENT="+p.ToAgent,
		"TRUSTHANDOFF_ACTIONS="+strings.Join(p.Permissions.AllowedActions, ","),
	)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = killAfter
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, err // stopped by the gate; the cause is on ctx
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		code := 0
		return &code, nil
	case errors.As(err, &ee):
		code := ee.ExitCode()
		return &code, nil
	}
	return nil, fmt.Errorf("starting %s: %w", argv[0], err)
}
