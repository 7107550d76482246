package main

import (
	"errors"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// openAuditLog opens the log that verify --audit-log and exec --audit-log append to,
// signing its checkpoints with the key in keyFile (default: the log's path + ".key",
// created on first use). Its errors wrap audit.ErrUnavailable when the file cannot be
// opened, locked or read, audit.ErrBroken when the existing log's chain is broken or does
// not match its checkpoint, and audit.ErrKey for an unusable key; auditLogErr maps them to
// exit codes.
func openAuditLog(path, keyFile string) (*audit.FileSink, error) {
	if keyFile == "" {
		return audit.OpenFile(path)
	}
	return audit.OpenFile(path, audit.WithKeyFile(keyFile))
}

// auditLogErr maps a failure of openAuditLog to the CLI's exit codes: 3 when the log is
// unavailable (an I/O failure), 2 otherwise (an existing log that is broken, or an
// unusable key).
func auditLogErr(err error) error {
	if errors.Is(err, audit.ErrUnavailable) {
		return unavailable(fmt.Errorf("--audit-log: %w", err))
	}
	return usageErr("--audit-log: %v", err)
}
