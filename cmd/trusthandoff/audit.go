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
count up from 1 and each record names the hash of the one before. Prints {"intact",
"records", "last_hash"} (and "error" naming the first broken record); exits 0 when intact,
1 when broken, 2 when the file cannot be read. Truncation of the newest records is not
detectable without a signed checkpoint (not implemented yet).`,
		Example: "  trusthandoff audit verify /var/log/trusthandoff/audit.jsonl",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			defer f.Close()
			n, last, err := audit.Verify(f)
			out := map[string]any{"intact": err == nil, "records": n, "last_hash": last}
			if err != nil && !errors.Is(err, audit.ErrBroken) {
				return usageErr("%s: %v", args[0], err)
			}
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
	return c
}
