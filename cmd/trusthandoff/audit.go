package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

func auditCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Check the hash-chained audit log written by verify --audit-log",
	}
	verifyLog := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that an audit log is intact (no record edited, deleted, inserted or reordered)",
		Long: `Check an audit log written by 'verify --audit-log' or 'exec --audit-log': sequence numbers
count up from 1, each record names the hash of the one before, and every record is a whole
line. The log is checked as it stood when the command started: writers appending meanwhile
(any number of processes may share one log) wait only for that instant.

Prints {"intact", "records", "last_hash"} (and "error" naming the first broken record).
Exit codes: 0 intact; 1 broken (a record edited, deleted, inserted, reordered, cut short,
or a line over 16 MiB, which no writer produces: every field taken from input is stored
bounded); 2 FILE is missing or not a regular file; 3 FILE cannot be locked or read.
Truncation of the newest records is not detectable without a signed checkpoint (not
implemented yet).`,
		Example: "  trusthandoff audit verify /var/log/trusthandoff/audit.jsonl",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			fi, err := os.Stat(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			if !fi.Mode().IsRegular() {
				return usageErr("%s is not a regular file", args[0])
			}
			n, last, err := audit.VerifyFile(args[0])
			if err != nil && !errors.Is(err, audit.ErrBroken) {
				return unavailable(err)
			}
			out := map[string]any{"intact": err == nil, "records": n, "last_hash": last}
			if err != nil {
				out["error"] = err.Error()
			}
			if perr := printJSON(c, out); perr != nil {
				return perr
			}
			if err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			return nil
		},
	}
	c.AddCommand(verifyLog)
	c.AddCommand(auditWitnessCmds()...)
	return c
}
