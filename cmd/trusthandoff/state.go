package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	pebblestore "github.com/trusthandoff/trusthandoff-go/store/pebble"
)

// stateFlags select where nonces and revocations live.
type stateFlags struct {
	dir               string
	redisURL          string
	redisPasswordFile string
	redisCAFile       string
	waitReplicas      int
	lockWait          time.Duration
	onDemand          bool // not a flag: exec sets it to hold the directory only while it uses it
}

func (s *stateFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&s.dir, "state", "", "state directory for nonces and revocations (default: $XDG_STATE_HOME/trusthandoff or ~/.local/state/trusthandoff)")
	c.Flags().StringVar(&s.redisURL, "redis", "", "share state through Redis instead: redis://[user@]host:port/db, or rediss://… for TLS (never a plaintext fallback); "+
		"give the password with --redis-password-file or $"+redisPasswordEnv+" rather than in the URL, which other users can see in the process list")
	c.Flags().StringVar(&s.redisPasswordFile, "redis-password-file", "", "with --redis: read the Redis password from this file (mode 0600; one line)")
	c.Flags().StringVar(&s.redisCAFile, "redis-ca-file", "", "with a rediss:// URL: trust the CA certificates in this PEM file instead of the system's")
	c.Flags().IntVar(&s.waitReplicas, "redis-wait-replicas", 0, "with --redis: reject unless this many replicas acknowledge each nonce (WAIT), so a failover cannot forget it")
	c.Flags().DurationVar(&s.lockWait, "state-lock-wait", 10*time.Second, "how long to wait for another process holding the state directory")
	c.MarkFlagsMutuallyExclusive("state", "redis")
	c.MarkFlagsMutuallyExclusive("state", "redis-password-file")
	c.MarkFlagsMutuallyExclusive("state", "redis-ca-file")
}

// state is an open state backend.
type state struct {
	replay      replay.Store
	revocations revocation.Store
	close       func() error
}

func (s *state) Close() error { return s.close() }

// defaultStateDir follows the XDG base directory spec.
func defaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "trusthandoff"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --state given and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "trusthandoff"), nil
}

func openState(ctx context.Context, f *stateFlags) (*state, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.redisURL != "" {
		return openRedisState(ctx, f)
	}
	if f.redisPasswordFile != "" || f.redisCAFile != "" || f.waitReplicas != 0 {
		return nil, usageErr("--redis-password-file, --redis-ca-file and --redis-wait-replicas need --redis")
	}
	dir := f.dir
	if dir == "" {
		var err error
		if dir, err = defaultStateDir(); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, unavailable(fmt.Errorf("state directory: %w", err))
	}
	if f.onDemand {
		return openOnDemand(dir, f.lockWait), nil
	}
	// Another CLI process may hold the directory for a few milliseconds: wait for it.
	deadline := time.Now().Add(f.lockWait)
	for {
		st, err := pebblestore.Open(dir, pebblestore.Config{SweepInterval: -1})
		if err == nil {
			// Short-lived CLI processes never see a background sweep; each one deletes the
			// nonces that have expired so far instead (cheap: one scan of the expiry index).
			closeFn := func() error {
				_, serr := st.Sweep(context.Background())
				return errors.Join(serr, st.Close())
			}
			return &state{replay: st, revocations: st, close: closeFn}, nil
		}
		if !errors.Is(err, pebblestore.ErrLocked) || time.Now().After(deadline) {
			return nil, unavailable(fmt.Errorf("state %s: %w", dir, err))
		}
		select {
		case <-ctx.Done():
			return nil, unavailable(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
