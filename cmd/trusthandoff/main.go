// Command trusthandoff signs, delegates, approves, verifies and attests agent handoffs.
//
// Machine output is JSON on stdout; messages go to stderr as "trusthandoff: error: …".
// Exit codes: 0 accepted / success, 1 rejected, 2 usage error or unusable input (outside
// verify), 3 a store or service unavailable.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Exit codes (DESIGN §12).
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

Exit codes: 0 accepted/success, 1 rejected, 2 usage error, 3 store unavailable.`,
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
		revokeCmd(), execCmd(), auditCmd(), attestCmd(), verifyAttestationCmd(), inspectCmd(), demoCmd(), policyCmd(),
	)
	return root
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
