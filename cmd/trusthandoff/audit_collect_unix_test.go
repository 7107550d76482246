//go:build unix

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/internal/natstest"
)

// TestAuditCollectRunsUntilSignalled: without --once the collector follows the stream and
// ends cleanly on SIGTERM.
func TestAuditCollectRunsUntilSignalled(t *testing.T) {
	srv := natstest.Start(t)
	log := filepath.Join(t.TempDir(), "cluster.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "audit", "collect", "--nats", srv.URL, "--out", log)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	publishEvents(t, srv.URL, "r", 25)
	for {
		if n, _, err := audit.VerifyFile(log); err == nil && n == 25 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("collector did not record the events\nstderr: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("collect after SIGTERM: %v\nstderr: %s", err, errb.String())
	}
	r := result{0, out.String(), errb.String()}
	if got := r.json(t); got["recorded"] != 25.0 || got["position"] != 25.0 {
		t.Fatalf("stats: %v", got)
	}
}
