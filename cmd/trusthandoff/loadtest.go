package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/loadtest"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// Bounds on what loadtest reads from disk.
const (
	maxLoadBody     = 1 << 20
	maxLoadBodies   = 1_000_000
	maxLoadTokenLen = 4 << 10
	maxRounds       = 100
)

type loadtestFlags struct {
	targets                       []string
	duration, timeout             time.Duration
	connections, requests, rounds int
	body, bodiesDir, tokenFile    string
	signKey, to, intent, agentID  string
	actions                       []string
	reuse, jsonOnly               bool
}

func loadtestCmd() *cobra.Command {
	var f loadtestFlags
	c := &cobra.Command{
		Use:   "loadtest --target URL [--target URL…] [flags]",
		Short: "Measure a local HTTP endpoint (the sidecar, the baseline) under concurrent load",
		Long: `Send requests to URL over --connections concurrent connections for --duration (or
until --requests have been sent) and print a JSON summary on stdout: requests per second,
latency quantiles in milliseconds, status codes, and the decisions and reason codes of the
JSON answers. A human summary goes to stderr (not with --json), with progress on a terminal.

Targets must be loopback addresses (127.0.0.0/8, ::1, localhost). Bodies are one file
(--body, sent on every request), one request per file of a directory (--bodies, each sent
once unless --reuse) or handoffs signed here just before each run (--sign-key and --to, one
per request, each with its own nonce, so a sidecar accepts every one: --requests of them,
default 100000). --token-file holds a bearer token (mode 0600).

With several --target and --rounds N the targets are measured in turn, N times each, in
one run; the summary gives each target's medians and their ratios to the first target's.

'loadtest baseline' serves the bare net/http verifier the sidecar is compared with.`,
		Example: `  trusthandoff loadtest baseline --listen 127.0.0.1:8701 --registry reg.json &
  trusthandoff loadtest --target http://127.0.0.1:8701/v1/verify --sign-key alice.key --to "$BOB" --duration 5s
  trusthandoff loadtest --target http://127.0.0.1:8700/v1/verify --target http://127.0.0.1:8701/v1/verify \
      --rounds 3 --token-file bob.token --sign-key alice.key --to "$BOB" --actions read_tickets --json
  trusthandoff loadtest --target http://127.0.0.1:8700/healthz --duration 2s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runLoadtest(c, &f) },
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.targets, "target", nil, "URL to load, repeatable (loopback only)")
	fl.DurationVar(&f.duration, "duration", loadtest.DefaultDuration, "length of each run (at most 10m)")
	fl.IntVar(&f.connections, "connections", loadtest.DefaultConnections, "concurrent connections")
	fl.IntVar(&f.requests, "requests", 0, "most requests per run (default: no limit; 100000 with --sign-key)")
	fl.IntVar(&f.rounds, "rounds", 1, "times each target is measured, alternating between targets")
	fl.DurationVar(&f.timeout, "timeout", loadtest.DefaultTimeout, "per-request timeout")
	fl.StringVar(&f.body, "body", "", "request body file, sent on every request")
	fl.StringVar(&f.bodiesDir, "bodies", "", "directory of request bodies, one per file (sorted by name)")
	fl.BoolVar(&f.reuse, "reuse", false, "cycle the --bodies files instead of sending each once")
	fl.StringVar(&f.signKey, "sign-key", "", "sign one fresh handoff per request with this key (mode 0600)")
	fl.StringVar(&f.to, "to", "", "recipient of the signed handoffs (with --sign-key)")
	fl.StringVar(&f.agentID, "agent-id", "", "sender's registered agent id, when it is not the key's own")
	fl.StringVar(&f.intent, "intent", "loadtest", "intent of the signed handoffs")
	fl.StringSliceVar(&f.actions, "actions", nil, "allowed actions of the signed handoffs")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token (mode 0600)")
	fl.BoolVar(&f.jsonOnly, "json", false, "no human summary or progress on stderr")
	c.MarkFlagsMutuallyExclusive("body", "bodies", "sign-key")
	c.AddCommand(loadtestBaselineCmd())
	return c
}

type loadRun struct {
	Round int `json:"round"`
	*loadtest.Result
}

type loadTargetSummary struct {
	Target                  string  `json:"target"`
	Runs                    int     `json:"runs"`
	RequestsPerSecondMedian float64 `json:"requests_per_second_median"`
	P50Median               float64 `json:"p50_ms_median"`
	P99Median               float64 `json:"p99_ms_median"`
	// Ratios to the first target's medians (absent for the first target).
	RequestsPerSecondRatio *float64 `json:"requests_per_second_vs_first,omitempty"`
	P99Ratio               *float64 `json:"p99_vs_first,omitempty"`
}

type loadOutput struct {
	Runs    []loadRun           `json:"runs"`
	Summary []loadTargetSummary `json:"summary"`
}

func runLoadtest(c *cobra.Command, f *loadtestFlags) error {
	if len(f.targets) == 0 {
		return usageErr("--target is required")
	}
	for _, t := range f.targets {
		if err := loadtest.CheckLoopback(t); err != nil {
			return usageErr("--target: %v", err)
		}
	}
	if f.rounds < 1 || f.rounds > maxRounds {
		return usageErr("--rounds %d is outside [1, %d]", f.rounds, maxRounds)
	}
	if f.requests < 0 {
		return usageErr("--requests must not be negative")
	}
	if (f.to != "" || f.agentID != "" || len(f.actions) > 0) && f.signKey == "" {
		return usageErr("--to, --agent-id and --actions need --sign-key")
	}
	if f.reuse && f.bodiesDir == "" {
		return usageErr("--reuse needs --bodies")
	}
	base := loadtest.Config{
		Duration: f.duration, Connections: f.connections, Timeout: f.timeout, MaxRequests: f.requests,
	}
	if f.tokenFile != "" {
		tok, err := readTokenFile(f.tokenFile)
		if err != nil {
			return usageErr("--token-file: %v", err)
		}
		base.Token = tok
	}
	var gen func() ([][]byte, error)
	switch {
	case f.body != "":
		b, err := readBoundedFile(f.body)
		if err != nil {
			return usageErr("--body: %v", err)
		}
		base.Bodies, base.Reuse = [][]byte{b}, true
	case f.bodiesDir != "":
		bodies, err := readBodiesDir(f.bodiesDir)
		if err != nil {
			return usageErr("--bodies: %v", err)
		}
		base.Bodies, base.Reuse = bodies, f.reuse
	case f.signKey != "":
		if f.to == "" {
			return usageErr("--sign-key needs --to")
		}
		key, err := identity.LoadPrivateKeyFile(f.signKey)
		if err != nil {
			return usageErr("--sign-key: %v", err)
		}
		n := f.requests
		if n == 0 {
			n = 100_000
		}
		base.MaxRequests = n
		opts := []packet.BuildOption{packet.WithActions(f.actions...)}
		if f.agentID != "" {
			opts = append(opts, packet.WithAgentID(f.agentID))
		}
		signer := identity.NewKeySigner(key)
		// Check the flags once before signing many.
		if _, err := loadtest.Envelopes(signer, f.to, f.intent, 1, opts...); err != nil {
			return usageErr("signing: %v", err)
		}
		gen = func() ([][]byte, error) { return loadtest.Envelopes(signer, f.to, f.intent, n, opts...) }
	}
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := c.ErrOrStderr()
	tty := !f.jsonOnly && isTerminal(stderr)

	var out loadOutput
	var unavailableErr error
	for round := 1; round <= f.rounds && ctx.Err() == nil; round++ {
		for _, target := range f.targets {
			cfg := base
			cfg.Target = target
			if gen != nil {
				bodies, err := gen() // signed before the run: not measured
				if err != nil {
					return err
				}
				cfg.Bodies = bodies
			}
			if tty {
				cfg.Progress = func(p loadtest.Progress) {
					fmt.Fprintf(stderr, "\r%s round %d: %5.1fs %9d answered %6d errors", target, round, p.Elapsed.Seconds(), p.Requests, p.Errors)
				}
			}
			res, err := loadtest.Run(ctx, cfg)
			if tty {
				fmt.Fprint(stderr, "\r\033[K")
			}
			if err != nil && !errors.Is(err, loadtest.ErrUnavailable) {
				return usageErr("%v", err)
			}
			if err != nil {
				unavailableErr = err
			}
			out.Runs = append(out.Runs, loadRun{Round: round, Result: res})
			if !f.jsonOnly {
				fmt.Fprintf(stderr, "%s round %d: %.0f req/s, p50 %.3f ms, p99 %.3f ms, %d answered, %d errors, decisions %v\n",
					target, round, res.RequestsPerSecond, res.Latency.P50, res.Latency.P99, res.Requests, res.Errors, res.Decisions)
			}
			cfg.Bodies = nil
			runtime.GC() // the next run starts without this run's garbage
		}
	}
	out.Summary = summarizeLoad(f.targets, out.Runs)
	if err := printJSON(c, out); err != nil {
		return err
	}
	if unavailableErr != nil {
		return unavailable(unavailableErr)
	}
	return nil
}

func summarizeLoad(targets []string, runs []loadRun) []loadTargetSummary {
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		s := slices.Clone(xs)
		sort.Float64s(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var out []loadTargetSummary
	for i, t := range targets {
		if slices.Index(targets, t) != i {
			continue // a target named twice is summarised once
		}
		var rps, p50, p99 []float64
		for _, r := range runs {
			if r.Target == t {
				rps = append(rps, r.RequestsPerSecond)
				p50 = append(p50, r.Latency.P50)
				p99 = append(p99, r.Latency.P99)
			}
		}
		s := loadTargetSummary{Target: t, Runs: len(rps), RequestsPerSecondMedian: median(rps), P50Median: median(p50), P99Median: median(p99)}
		if len(out) > 0 && out[0].RequestsPerSecondMedian > 0 && out[0].P99Median > 0 {
			r1, r2 := s.RequestsPerSecondMedian/out[0].RequestsPerSecondMedian, s.P99Median/out[0].P99Median
			s.RequestsPerSecondRatio, s.P99Ratio = &r1, &r2
		}
		out = append(out, s)
	}
	return out
}

// readTokenFile reads a bearer token: a regular file, mode 0600 on Unix, one line.
func readTokenFile(path string) (string, error) {
	b, err := readSecretFile(path, true)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || len(tok) > maxLoadTokenLen || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("%s does not hold one token", path)
	}
	return tok, nil
}

func readBoundedFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxLoadBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLoadBody {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxLoadBody)
	}
	return b, nil
}

func readBodiesDir(dir string) ([][]byte, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if len(out) == maxLoadBodies {
			return nil, fmt.Errorf("%s holds more than %d files", dir, maxLoadBodies)
		}
		b, err := readBoundedFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no regular files", dir)
	}
	return out, nil
}

func isTerminal(w io.Writer) bool {
	fh, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := fh.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func loadtestBaselineCmd() *cobra.Command {
	var listen, reg string
	c := &cobra.Command{
		Use:   "baseline --listen ADDR --registry REG",
		Short: "Serve the bare net/http verifier the sidecar is measured against",
		Long: `Serve the baseline on ADDR (a loopback address; port 0 picks a free one) until SIGINT or
SIGTERM: POST any path with an envelope; it reads the body, decodes the envelope, looks the
sender's key up in REG and runs one crypto/ed25519.Verify of the signed bytes, answering
{"decision","reason","packet_id"}. It keeps no state: no replay protection, no policy.
Once listening it prints {"listen":"HOST:PORT"} on stdout.`,
		Example: `  trusthandoff loadtest baseline --listen 127.0.0.1:8701 --registry reg.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if reg == "" {
				return usageErr("--registry is required")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageErr("--listen: %v", err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return usageErr("--listen: %q is not a loopback address", host)
			}
			r, err := registry.Load(reg)
			if err != nil {
				return usageErr("--registry: %v", err)
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return unavailable(err)
			}
			srv := &http.Server{
				Handler:           loadtest.NewBaseline(r),
				ReadHeaderTimeout: 5 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      30 * time.Second,
				IdleTimeout:       2 * time.Minute,
			}
			if err := writeJSONLine(c.OutOrStdout(), map[string]string{"listen": l.Addr().String()}); err != nil {
				l.Close()
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			select {
			case err := <-errc:
				return unavailable(err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8701", "loopback address to listen on")
	c.Flags().StringVar(&reg, "registry", "", "registry file")
	return c
}
