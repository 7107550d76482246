package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// openAuditLog opens the log that verify --audit-log and exec --audit-log append to,
// signing its checkpoints with the key in keyFile (default: the log's path + ".key",
// created on first use). Its errors wrap audit.ErrUnavailable when the file cannot be
// opened, locked or read, audit.ErrBroken when the existing log's chain is broken or does
// not match its checkpoint, and audit.ErrKey for an unusable key; auditLogErr maps them to
// exit codes. rotateBytes > 0 rotates the log into sealed segments (AUDIT_LOG.000001, …)
// when the active file would grow past it (--audit-rotate-bytes; 0: never).
func openAuditLog(path, keyFile string, rotateBytes int64) (*audit.FileSink, error) {
	var opts []audit.FileOption
	if keyFile != "" {
		opts = append(opts, audit.WithKeyFile(keyFile))
	}
	if rotateBytes > 0 {
		opts = append(opts, audit.WithRotateBytes(rotateBytes))
	}
	return audit.OpenFile(path, opts...)
}

// auditRotateUsage is the help text of --audit-rotate-bytes.
const auditRotateUsage = "rotate the audit log when its active file would grow past this many bytes: it is sealed as AUDIT_LOG.000001, AUDIT_LOG.000002, … and a new one continues the chain and the checkpoint (0: never)"

// auditLogErr maps a failure of openAuditLog to the CLI's exit codes: 3 when the log is
// unavailable (an I/O failure), 2 otherwise (an existing log that is broken, or an
// unusable key).
func auditLogErr(err error) error {
	if errors.Is(err, audit.ErrUnavailable) {
		return unavailable(fmt.Errorf("--audit-log: %w", err))
	}
	return usageErr("--audit-log: %v", err)
}

// auditLogFlags are --audit-log, --audit-key and --audit-rotate-bytes of a command that
// appends events to a log.
type auditLogFlags struct {
	path, key string
	rotate    int64
}

func (f *auditLogFlags) register(c *cobra.Command, usage string) {
	c.Flags().StringVar(&f.path, "audit-log", "", usage)
	c.Flags().StringVar(&f.key, "audit-key", "", "the audit log's signer key file (default: AUDIT_LOG.key, created 0600 on first use)")
	c.Flags().Int64Var(&f.rotate, "audit-rotate-bytes", 0, auditRotateUsage)
}

// open opens the log (nil without --audit-log), its errors mapped by auditLogErr.
func (f *auditLogFlags) open() (*audit.FileSink, error) {
	if f.path == "" {
		return nil, nil
	}
	sink, err := openAuditLog(f.path, f.key, f.rotate)
	if err != nil {
		return nil, auditLogErr(err)
	}
	return sink, nil
}

// emitChange appends ev to sink (nothing without a log).
func emitChange(c *cobra.Command, sink *audit.FileSink, ev audit.Event) error {
	if sink == nil {
		return nil
	}
	return sink.Emit(c.Context(), ev)
}

func closeSink(sink *audit.FileSink) {
	if sink != nil {
		_ = sink.Close()
	}
}
