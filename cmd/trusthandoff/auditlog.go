package main

import "github.com/trusthandoff/trusthandoff-go/audit"

func openAuditLog(path string) (*audit.FileSink, error) { return audit.OpenFile(path) }
