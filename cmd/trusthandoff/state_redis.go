package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	redislogging "github.com/redis/go-redis/v9/logging"

	redisstore "github.com/trusthandoff/trusthandoff-go/store/redis"
)

// redisPasswordEnv names the environment variable a Redis password may come from.
const redisPasswordEnv = "REDIS_PASSWORD"

// maxSecretFile bounds a password or CA file, so a wrong path cannot make the CLI read a disk.
const maxSecretFile = 1 << 20

// openRedisState connects to a shared Redis (redis://[user:password@]host:port[/db], or
// rediss://… for TLS) and waits until the revocation cache has synced, so the first
// verification already sees every revocation made by any node. The URL is parsed by
// store/redis; no message here quotes it, only its host and port.
func openRedisState(ctx context.Context, f *stateFlags) (*state, error) {
	if f.waitReplicas < 0 {
		return nil, usageErr("--redis-wait-replicas must not be negative")
	}
	cfg, err := redisstore.ParseURL(f.redisURL)
	if err != nil {
		return nil, usageErr("--redis: %v", err)
	}
	if err := redisPassword(&cfg, f.redisPasswordFile); err != nil {
		return nil, err
	}
	if f.redisCAFile != "" {
		if cfg.TLSConfig == nil {
			return nil, usageErr("--redis-ca-file needs a rediss:// (TLS) URL")
		}
		pem, err := readSecretFile(f.redisCAFile, false)
		if err != nil {
			return nil, usageErr("--redis-ca-file: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, usageErr("--redis-ca-file: %s holds no PEM certificate", f.redisCAFile)
		}
		cfg.TLSConfig.RootCAs = roots
	}
	cfg.WaitReplicas = f.waitReplicas
	// go-redis logs dial failures to stderr by itself (process-wide); every one of them
	// reaches the user once, as the error below, in the CLI's own format.
	redislogging.Disable()
	st, err := redisstore.Open(cfg)
	if err != nil {
		return nil, usageErr("--redis: %v", err)
	}
	wait, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// PING first: it names the cause (refused, TLS handshake, WRONGPASS, NOAUTH) that the
	// subscription's "not synced" would hide.
	if err := st.Ping(wait); err != nil {
		st.Close()
		var netErr net.Error
		if cfg.TLSConfig != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()) {
			// A plaintext server never answers a TLS ClientHello: the handshake just times out.
			err = fmt.Errorf("%w (no TLS handshake: is this port TLS? rediss:// never falls back to plaintext)", err)
		}
		return nil, unavailable(fmt.Errorf("redis %s: %w", cfg.Addr, err))
	}
	if err := st.Ready(wait); err != nil {
		st.Close()
		return nil, unavailable(fmt.Errorf("redis %s: %w", cfg.Addr, err))
	}
	return &state{replay: st, revocations: st, close: st.Close}, nil
}

// redisPassword fills cfg.Password from, in this order, --redis-password-file, the URL, or
// $REDIS_PASSWORD. A password both in the URL and in a file is ambiguous: a usage error.
func redisPassword(cfg *redisstore.Config, file string) error {
	switch {
	case file != "" && cfg.Password != "":
		return usageErr("--redis-password-file and a password in the --redis URL: give only one")
	case file != "":
		b, err := readSecretFile(file, true)
		if err != nil {
			return usageErr("--redis-password-file: %v", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return usageErr("--redis-password-file: %s is empty", file)
		}
		if strings.ContainsAny(pw, "\r\n") {
			return usageErr("--redis-password-file: %s holds more than one line", file)
		}
		cfg.Password = pw
	case cfg.Password == "":
		cfg.Password = os.Getenv(redisPasswordEnv)
	}
	return nil
}

// readSecretFile reads a small regular file without blocking on a FIFO or device, and, when
// private, refuses one that its group or others may access (as for key files; Windows has
// no such mode bits).
func readSecretFile(path string, private bool) ([]byte, error) {
	// Stat before opening: opening a FIFO for reading blocks until a writer comes.
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if private && runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible by group or others (it is %04o; run chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st2, err := fh.Stat(); err != nil || !os.SameFile(st, st2) {
		return nil, errors.Join(fmt.Errorf("%s changed while being opened", path), err)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	return b, nil
}
