// Package redistest starts throwaway redis-server processes on 127.0.0.1 for
// tests: the shared store suite, the Redis fault tests and any other test
// that needs a real Redis (for example the verifier's runtime revalidation).
// It uses only the standard library, so importing it adds no dependency.
//
// A test that needs Redis calls Start; when the redis-server binary is not
// installed the test is skipped, unless the environment variable named by
// RequireEnv is set, in which case it fails (CI sets it).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/testservice"
)

// RequireEnv names the environment variable that turns "redis-server not
// installed" from a skip into a failure.
const RequireEnv = "TRUSTHANDOFF_REQUIRE_REDIS"

// Server is a redis-server child process. It is killed when the test ends.
type Server struct {
	// Addr is the server's "127.0.0.1:port".
	Addr string
	*testservice.Process
}

// Start starts redis-server on a free loopback port with persistence off
// (plus extraArgs, e.g. "--replicaof", "127.0.0.1 6380"), waits until it
// answers PING, and registers its shutdown with t.Cleanup. Kill stops it with
// SIGKILL; Restart starts it again on the same port, empty (persistence is off).
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	p := testservice.Start(t, testservice.Spec{
		Binary:     "redis-server",
		Install:    "apt-get install redis-server",
		RequireEnv: RequireEnv,
		Args: func(port int, dir string) []string {
			return append([]string{
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
			}, extraArgs...)
		},
		Ready:        Ping,
		StartTimeout: 10 * time.Second,
	})
	return &Server{Addr: p.Addr, Process: p}
}

// Ping sends PING to the Redis server at addr and expects +PONG.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
