// Package natstest starts throwaway nats-server processes with JetStream on 127.0.0.1 for
// tests: the NATS audit sink and collector, and the CLI's collect command. It uses only the
// standard library, so importing it adds no dependency.
//
// A test that needs NATS calls Start; when the nats-server binary is not installed the test
// is skipped, unless the environment variable named by RequireEnv is set, in which case it
// fails (CI sets it). The server's JetStream store lives in a per-test directory that
// survives Kill, so Restart brings back every stream and message.
package natstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "nats-server not installed" from a
// skip into a failure.
const RequireEnv = "TRUSTHANDOFF_REQUIRE_NATS"

const startTimeout = 15 * time.Second

// Server is a nats-server child process with JetStream enabled. It is killed when the test
// ends.
type Server struct {
	// Addr is the server's "127.0.0.1:port"; URL is "nats://" + Addr.
	Addr, URL string

	t    testing.TB
	bin  string
	port int
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	output  *lockedBuffer
	running bool
}

// Start starts nats-server -js on a free loopback port with its store in a temporary
// directory, waits until JetStream answers, and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("nats-server not found in PATH and %s is set: %v", RequireEnv, err)
		}
		t.Skipf("nats-server not found in PATH (install it, e.g. apt-get install nats-server; set %s=1 to fail instead of skipping)", RequireEnv)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	var lastErr error
	for range 5 { // a free port can be taken between probe and bind; retry
		port, err := freePort()
		if err != nil {
			t.Fatalf("natstest: %v", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "nats://" + s.Addr
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("natstest: %v", lastErr)
	return nil
}

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// StoreDir returns the directory holding the server's JetStream store.
func (s *Server) StoreDir() string { return s.dir }

// Output returns what the server has logged since it was last started.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.output == nil {
		return ""
	}
	return s.output.String()
}

// Kill stops the server with SIGKILL and waits for it to exit; it does nothing if the
// server is not running.
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

// Restart starts the server again on the same port, with the same store, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("natstest: restart on port %d: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("nats-server on port %d is already running", s.port)
	}
	cmd := exec.Command(s.bin,
		"-js",
		"-a", "127.0.0.1",
		"-p", strconv.Itoa(s.port),
		"-sd", s.dir,
		"-n", "natstest-"+strconv.Itoa(s.port),
	)
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
		err := Ping(s.Addr)
		if err == nil {
			s.cmd, s.exited, s.output, s.running = cmd, exited, out, true
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("nats-server on port %d exited at start (%v):\n%s", s.port, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("nats-server on port %d: JetStream did not answer within %v (%v):\n%s", s.port, startTimeout, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ping connects to the NATS server at addr and asks JetStream for its account info
// ($JS.API.INFO) in the plain NATS protocol; it succeeds when the answer is an account info
// response, so the server accepts clients and JetStream is up.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("server greeted with %q", line)
	}
	req := "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false}\r\n" +
		"SUB _INBOX.natstest 1\r\n" +
		"PUB $JS.API.INFO _INBOX.natstest 0\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(line, "PING"):
			if _, err := c.Write([]byte("PONG\r\n")); err != nil {
				return err
			}
		case strings.HasPrefix(line, "-ERR"):
			return errors.New(strings.TrimSpace(line))
		case strings.HasPrefix(line, "MSG "):
			f := strings.Fields(line)
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil || n < 0 || n > 1<<20 {
				return fmt.Errorf("bad MSG line %q", line)
			}
			body := make([]byte, n+2)
			if _, err := io.ReadFull(br, body); err != nil {
				return err
			}
			if !bytes.Contains(body, []byte("account_info_response")) || bytes.Contains(body, []byte(`"error"`)) {
				return fmt.Errorf("JetStream answered %q", bytes.TrimSpace(body))
			}
			return nil
		}
	}
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
