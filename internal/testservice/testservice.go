// Package testservice runs a throwaway service binary (redis-server, nats-server, …) as a
// child process on a free 127.0.0.1 port for tests, so a test can also kill and restart it
// for fault tests. It holds what redistest and natstest share: finding the binary (skip, or
// fail when the suite is required), free-port retries, waiting until the service answers,
// SIGKILL and restart on the same port. It uses only the standard library.
package testservice

import (
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

// Spec describes a service.
type Spec struct {
	// Binary is looked up in PATH; Install is how a user gets it (shown when it is missing).
	Binary, Install string
	// RequireEnv names the environment variable that turns "not installed" from a skip
	// into a failure.
	RequireEnv string
	// Args returns the command-line arguments for a server on port with its files in dir.
	Args func(port int, dir string) []string
	// Ready reports whether the service at addr ("127.0.0.1:port") answers.
	Ready func(addr string) error
	// StartTimeout bounds the wait for Ready after a start.
	StartTimeout time.Duration
}

// Process is one service child process. It is killed when the test ends.
type Process struct {
	// Addr is "127.0.0.1:port".
	Addr string

	t    testing.TB
	spec Spec
	bin  string
	port int
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	output  *lockedBuffer
	running bool
}

// Start starts the service on a free loopback port with its files in a per-test directory
// (which survives Kill), waits until it answers, and registers its shutdown with t.Cleanup.
// When the binary is missing the test is skipped, or fails if spec.RequireEnv is set.
func Start(t testing.TB, spec Spec) *Process {
	t.Helper()
	bin, err := exec.LookPath(spec.Binary)
	if err != nil {
		if os.Getenv(spec.RequireEnv) != "" {
			t.Fatalf("%s not found in PATH and %s is set: %v", spec.Binary, spec.RequireEnv, err)
		}
		t.Skipf("%s not found in PATH (install it, e.g. %s; set %s=1 to fail instead of skipping)", spec.Binary, spec.Install, spec.RequireEnv)
	}
	p := &Process{t: t, spec: spec, bin: bin, dir: t.TempDir()}
	t.Cleanup(p.Kill)
	var lastErr error
	for range 5 { // a free port can be taken between probe and bind; retry
		port, err := freePort()
		if err != nil {
			t.Fatalf("testservice: %v", err)
		}
		p.port = port
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = p.start(); lastErr == nil {
			return p
		}
	}
	t.Fatalf("testservice: %v", lastErr)
	return nil
}

// Port returns the service's TCP port.
func (p *Process) Port() int { return p.port }

// Dir returns the directory holding the service's files.
func (p *Process) Dir() string { return p.dir }

// Output returns what the service has written since it was last started.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.output == nil {
		return ""
	}
	return p.output.String()
}

// Kill stops the service with SIGKILL and waits for it to exit; it does nothing if the
// service is not running.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.running = false
}

// Restart starts the service again on the same port, with the same directory, after Kill.
func (p *Process) Restart() {
	p.t.Helper()
	deadline := time.Now().Add(p.spec.StartTimeout)
	for {
		err := p.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("testservice: restart %s on port %d: %v", p.spec.Binary, p.port, err)
		}
		time.Sleep(50 * time.Millisecond) // the port may linger briefly
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return fmt.Errorf("%s on port %d is already running", p.spec.Binary, p.port)
	}
	cmd := exec.Command(p.bin, p.spec.Args(p.port, p.dir)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(p.spec.StartTimeout)
	for {
		err := p.spec.Ready(p.Addr)
		if err == nil {
			p.cmd, p.exited, p.output, p.running = cmd, exited, out, true
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s on port %d exited at start (%v):\n%s", p.spec.Binary, p.port, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s on port %d did not answer within %v (%v):\n%s", p.spec.Binary, p.port, p.spec.StartTimeout, err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
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

func (b *lockedBuffer) Write(q []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(q)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
