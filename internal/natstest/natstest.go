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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/internal/testservice"
)

// RequireEnv names the environment variable that turns "nats-server not installed" from a
// skip into a failure.
const RequireEnv = "TRUSTHANDOFF_REQUIRE_NATS"

// Server is a nats-server child process with JetStream enabled. It is killed when the test
// ends.
type Server struct {
	// Addr is the server's "127.0.0.1:port"; URL is "nats://" + Addr.
	Addr, URL string
	*testservice.Process
}

// Start starts nats-server -js on a free loopback port with its store in a temporary
// directory, waits until JetStream answers, and registers its shutdown with t.Cleanup.
// Kill stops it with SIGKILL; Restart brings it back on the same port with every stream.
func Start(t testing.TB) *Server {
	t.Helper()
	p := testservice.Start(t, testservice.Spec{
		Binary:     "nats-server",
		Install:    "apt-get install nats-server",
		RequireEnv: RequireEnv,
		Args: func(port int, dir string) []string {
			return []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", dir, "-n", "natstest-" + strconv.Itoa(port)}
		},
		Ready:        Ping,
		StartTimeout: 15 * time.Second,
	})
	return &Server{Addr: p.Addr, URL: "nats://" + p.Addr, Process: p}
}

// StoreDir returns the directory holding the server's JetStream store.
func (s *Server) StoreDir() string { return s.Dir() }

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
