package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestExecOnATerminal: exec's command runs in a process group of its own, yet a command that
// reads the terminal works (its group gets the terminal's foreground instead of being
// stopped by SIGTTIN), ^C on the terminal reaches it, and exec takes the terminal back to
// print its result.
func TestExecOnATerminal(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name     string
		command  []string
		ready    string // the command has started once the terminal shows this readyN times
		readyN   int
		prime    string // typed first (the terminal echoes it, then the command may)
		input    string // typed once the command runs
		wantCode int
		wantOut  string
	}{
		{"the command reads the terminal", []string{"sh", "-c", `echo ready; read line; echo "got $line"`}, "ready", 1, "",
			"hello\n", 0, "got hello"},
		// cat, not a shell: a shell may defer a ^C that lands while it forks, and lose it.
		{"^C reaches the command", []string{"cat"}, "ping", 2, "ping\n", "\x03", 4, `"exit_code": -1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			master, slave := openPTY(t)
			defer master.Close()
			env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
			cmd := exec.Command(binary, append([]string{"exec", "--registry", w.reg, "--state", w.state, env, "--"}, c.command...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			// A session of its own with the terminal as controlling terminal, as a login shell has.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			slave.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			var mu sync.Mutex
			var out bytes.Buffer
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := master.Read(buf)
					mu.Lock()
					out.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			count := func(s string) int { mu.Lock(); defer mu.Unlock(); return strings.Count(out.String(), s) }
			seen := func(s string) bool { return count(s) > 0 }
			if _, err := io.WriteString(master, c.prime); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the command started", 20*time.Second, func() bool { return count(c.ready) >= c.readyN })
			if _, err := io.WriteString(master, c.input); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				ps, _ := exec.Command("ps", "-o", "pid,ppid,pgid,sid,tpgid,stat,wchan:20,args", "-s", fmt.Sprint(cmd.Process.Pid)).Output()
				t.Fatalf("exec did not finish; terminal output:\n%s\n%s", out.String(), ps)
			}
			if code := cmd.ProcessState.ExitCode(); code != c.wantCode {
				t.Fatalf("exit %d, want %d", code, c.wantCode)
			}
			eventually(t, "the result on the terminal", 10*time.Second, func() bool { return seen(c.wantOut) && seen(`"ran": true`) })
		})
	}
}
