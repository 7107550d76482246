// Command trusthandoff signs, delegates, approves, verifies and attests agent handoffs.
//
// Machine output is JSON on stdout; messages go to stderr as "trusthandoff: error: …".
// Exit codes: 0 accepted / success, 1 rejected, 2 usage error (an unknown or missing command
// included) or unusable input (outside verify), 3 a store or service unavailable (an I/O
// failure of the state included), 4 (exec only) the command ran and failed.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes; exitCommandFailed (4) is exec's own.
const (
	exitOK          = 0
	exitRejected    = 1
	exitUsage       = 2
	exitUnavailable = 3
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // nil: the command already reported (e.g. a REJECT decision on stdout)
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func unavailable(err error) error { return &exitError{code: exitUnavailable, err: err} }

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run executes the CLI and returns the exit code; tests call it in-process too.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "trusthandoff: error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "trusthandoff: error: %v\n", err)
	return exitUsage
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "trusthandoff",
		Short: "Provable delegation between AI agents",
		Long: `trusthandoff signs, delegates, approves, verifies and attests handoffs between AI agents.

Every delegation is a signed, time-bounded packet; replays are rejected; authority travels
as capability chains that can only narrow; risky actions wait for a signed human approval.
Packets are byte-compatible with the Python reference (PyPI trusthandoff 0.3.3 / 0.4.0).

Exit codes: 0 accepted/success, 1 rejected, 2 usage error (unknown command included),
3 store unavailable (also an I/O failure of the state), 4 exec only: the command ran and failed.`,
		Example: `  trusthandoff keygen --out alice.key
  trusthandoff registry add --registry reg.json --public-key alice.key.pub
  trusthandoff sign --key alice.key --to agent:XYZ --intent "summarize tickets" --actions read_tickets > env.json
  trusthandoff verify --registry reg.json env.json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version(),
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%v (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(
		keygenCmd(), registryCmd(), signCmd(), delegateCmd(), approveCmd(), verifyCmd(),
		revokeCmd(), execCmd(), serveCmd(), tokenCmd(), auditCmd(), bundleCmd(), attestCmd(), verifyAttestationCmd(), inspectCmd(), demoCmd(), policyCmd(),
		receiptCmd(), loadtestCmd(),
	)
	root.SetHelpCommand(helpCmd())
	root.InitDefaultCompletionCmd()
	requireSubcommands(root)
	return root
}

// requireSubcommands makes every command that only groups others (root, registry, audit,
// completion, …) fail with a usage error when its subcommand is unknown or missing; cobra
// would print the help and exit 0, and a script would take a typo for success.
func requireSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		requireSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	// "registry delete --registry r.json" names the unknown command, not the flag that
	// belongs to a subcommand.
	c.FParseErrWhitelist.UnknownFlags = c.HasParent()
	c.RunE = func(c *cobra.Command, args []string) error {
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		hint := fmt.Sprintf("see '%s --help'", c.CommandPath())
		if c.HasParent() {
			hint = "one of " + strings.Join(names, ", ") + "; " + hint
		}
		if len(args) == 0 {
			return usageErr("%q needs a command (%s)", c.CommandPath(), hint)
		}
		// root's args never get here: cobra refuses them with its own "unknown command".
		return usageErr("unknown command %q for %q (%s)", args[0], c.CommandPath(), hint)
	}
}

// helpCmd replaces cobra's help command, which prints the usage and exits 0 for an unknown
// topic.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErr("unknown help topic %q (see '%s --help')", strings.Join(args, " "), c.Root().Name())
			}
			return cmd.Help()
		},
	}
}

// printJSON writes v as indented JSON to the command's stdout.
func printJSON(c *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.OutOrStdout(), "%s\n", b)
	return err
}

// readInput reads a named file, or stdin for "-" or no name.
func readInput(c *cobra.Command, args []string, limit int64) ([]byte, error) {
	name := "-"
	if len(args) > 0 {
		name = args[0]
	}
	var r io.Reader
	if name == "-" {
		r = c.InOrStdin()
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		defer f.Close()
		r = f
	}
	// Read one byte past the limit so oversize input is detected, not truncated.
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, usageErr("reading %s: %v", name, err)
	}
	return data, nil
}

// writeJSONLine writes v as one compact JSON line.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// version reports the module version the binary was built from ("devel" in a checkout),
// with the VCS revision when the build recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

// printRaw writes the JSON that marshal produces, as one line, to the command's stdout.
func printRaw(c *cobra.Command, marshal func() ([]byte, error)) error {
	out, err := marshal()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.OutOrStdout(), "%s\n", out)
	return err
}
