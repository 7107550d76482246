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
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "redis-server not
// installed" from a skip into a failure.
const RequireEnv = "TRUSTHANDOFF_REQUIRE_REDIS"

const startTimeout = 10 * time.Second

// Server is a redis-server child process. It is killed when the test ends.
type Server struct {
	// Addr is the server's "127.0.0.1:port".
	Addr string

	t    testing.TB
	bin  string
	port int
	dir  string
	args []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	output  *lockedBuffer
	running bool
}

// Start starts redis-server on a free loopback port with persistence off
// (plus extraArgs, e.g. "--replicaof", "127.0.0.1 6380"), waits until it
// answers PING, and registers its shutdown with t.Cleanup.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("redis-server not found in PATH and %s is set: %v", RequireEnv, err)
		}
		t.Skipf("redis-server not found in PATH (install it, e.g. apt-get install redis-server; set %s=1 to fail instead of skipping)", RequireEnv)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), args: extraArgs}
	t.Cleanup(s.Kill)
	var lastErr error
	for range 5 { // a free port can be taken between probe and bind; retry
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// Kill stops the server with SIGKILL and waits for it to exit; it does
// nothing if the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.running = false
}

// Restart starts the server again on the same port after Kill. The new
// server starts empty (persistence is off).
func (s *Server) Restart() {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("redis-server on port %d is already running", s.port)
	}
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if err := Ping(s.Addr); err == nil {
			s.cmd, s.exited, s.output, s.running = cmd, exited, out, true
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start:\n%s", s.port, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v:\n%s", s.port, startTimeout, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
