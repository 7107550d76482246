package main

import (
	"errors"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// openAuditLog opens the log that verify --audit-log and exec --audit-log append to. Its
// errors wrap audit.ErrUnavailable when the file cannot be opened, locked or read, and
// audit.ErrBroken when the existing log's chain is broken; auditLogErr maps them to exit
// codes.
func openAuditLog(path string) (*audit.FileSink, error) { return audit.OpenFile(path) }

// auditLogErr maps a failure of openAuditLog to the CLI's exit codes: 3 when the log is
// unavailable (an I/O failure), 2 otherwise (an existing log whose chain is broken).
func auditLogErr(err error) error {
	if errors.Is(err, audit.ErrUnavailable) {
		return unavailable(fmt.Errorf("--audit-log: %w", err))
	}
	return usageErr("--audit-log: %v", err)
}
