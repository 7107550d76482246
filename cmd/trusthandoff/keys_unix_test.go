//go:build unix

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKeyFileFIFONeverBlocks: a FIFO given as a key file (with no writer, so an open
// without O_NONBLOCK would wait forever) is refused with exit 2. The context deadline is
// only a hang guard that turns the bug into a failure, not a timing assertion.
func TestKeyFileFIFONeverBlocks(t *testing.T) {
	w := newWorld(t)
	fifo := filepath.Join(w.dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, args := range [][]string{
		{"registry", "add", "--registry", w.reg, "--public-key", fifo},
		{"registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["alice"], "--public-key", fifo},
		{"sign", "--key", fifo, "--to", w.ids["bob"], "--intent", "x"},
		{"delegate", "--key", fifo, "--to", w.ids["bob"], "--actions", "read_tickets"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatal("the command blocked on the FIFO")
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "named pipe") {
				t.Fatalf("err %v, stderr %q; want exit 2 naming the FIFO", err, stderr.String())
			}
		})
	}
}
