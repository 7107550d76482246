//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeScript is a command that starts a tree of processes in its group and records their
// pids in $1: cmd (the shell exec started), sup (its parent: the supervisor), child (a
// background sleep), stubborn (a shell that ignores SIGTERM, as does the sleep it runs),
// grandchild (a sleep started by a background shell).
const treeScript = `dir=$1
sleep 300 &
echo $! > "$dir/child.pid"
sh -c 'trap "" TERM; echo $$ > "$1/stubborn.pid"; while :; do sleep 1; done' x "$dir" &
sh -c 'sleep 300 & echo $! > "$1/grandchild.pid"; wait' x "$dir" &
echo $PPID > "$dir/sup.pid"
echo $$ > "$dir/cmd.pid"
wait
`

var treePIDs = []string{"cmd", "child", "stubborn", "grandchild"}

// readPID waits (bounded) until file holds a pid and returns it.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, "pid file "+filepath.Base(file), 20*time.Second, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// eventually polls cond every 10 ms and fails the test if it does not hold within d.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs: no such process, or a zombie (dead,
// waiting to be reaped by a parent that may never do it, such as a container's init).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
		}
	}
	out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	st := strings.TrimSpace(string(out))
	return err != nil || st == "" || strings.HasPrefix(st, "Z")
}

// treeGone waits (bounded) until every process of the tree in dir is gone.
func treeGone(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		pid := readPID(t, filepath.Join(dir, name+".pid"))
		eventually(t, fmt.Sprintf("%s (pid %d) gone", name, pid), 15*time.Second, func() bool { return processGone(pid) })
	}
}

// killTree kills what a failed test may have left running.
func killTree(dir string) {
	for _, name := range append([]string{"sup"}, treePIDs...) {
		if b, err := os.ReadFile(filepath.Join(dir, name+".pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// background is a trusthandoff process started by a test.
type background struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *os.File
	done   chan struct{}
}

// startTH starts the CLI in the background, in a process group of its own (so that a test
// can signal the group), with stderr in a file the test can read while it runs.
func startTH(t *testing.T, dir string, args ...string) *background {
	t.Helper()
	b := &background{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	f, err := os.CreateTemp(dir, "stderr-*")
	if err != nil {
		t.Fatal(err)
	}
	b.stderr = f
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, f
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.WaitDelay = 20 * time.Second // processes that keep stdout open must not hang the test
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
		f.Close()
	})
	return b
}

// wait waits (bounded) for the process to exit and returns its exit code and output.
func (b *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("trusthandoff %v did not exit", b.cmd.Args[1:])
	}
	errb, _ := os.ReadFile(b.stderr.Name())
	return result{code: b.cmd.ProcessState.ExitCode(), stdout: b.stdout.String(), stderr: string(errb)}
}

// stderrHas reports whether the process has written s to stderr so far.
func (b *background) stderrHas(s string) bool {
	errb, _ := os.ReadFile(b.stderr.Name())
	return bytes.Contains(errb, []byte(s))
}

func execJSON(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return m
}

// TestExecEndsTheWholeGroup: when the handoff lapses, or exec is told to stop, or the
// command exits leaving processes behind, every process of the command's group is ended:
// the command, its children, its grandchildren, and those that ignore SIGTERM (SIGKILL
// after --kill-after).
func TestExecEndsTheWholeGroup(t *testing.T) {
	w := newWorld(t)
	script := w.write(t, "tree.sh", treeScript)
	cases := []struct {
		name     string
		ttl      string
		script   string         // default: treeScript
		stop     syscall.Signal // sent to exec once the tree runs (0: none)
		wantCode int
		check    func(t *testing.T, res map[string]any)
	}{
		{name: "the handoff expires", ttl: "3s", wantCode: 1, check: func(t *testing.T, res map[string]any) {
			if res["invalidated"] != "expired" || res["ran"] != true {
				t.Fatalf("%v", res)
			}
		}},
		{name: "exec gets SIGTERM", stop: syscall.SIGTERM, wantCode: 4},
		{name: "exec gets SIGINT", stop: syscall.SIGINT, wantCode: 4},
		{name: "exec gets SIGHUP", stop: syscall.SIGHUP, wantCode: 4},
		{name: "the command exits and leaves its children running",
			script: treeScript[:strings.LastIndex(treeScript, "wait")] +
				`while [ ! -s "$dir/grandchild.pid" ] || [ ! -s "$dir/stubborn.pid" ]; do sleep 0.05; done; exit 3` + "\n",
			wantCode: 4,
			check: func(t *testing.T, res map[string]any) {
				if res["exit_code"] != float64(3) {
					t.Fatalf("%v", res)
				}
			}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(w.dir, fmt.Sprintf("tree-%d", i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killTree(dir) })
			run := script
			if c.script != "" {
				run = w.write(t, fmt.Sprintf("tree-%d.sh", i), c.script)
			}
			extra := []string{"--actions", "read_tickets"}
			if c.ttl != "" {
				extra = append(extra, "--ttl", c.ttl)
			}
			env := sign(t, w, "alice", "bob", extra...)
			b := startTH(t, w.dir, "exec", "--registry", w.reg, "--state", w.state, "--kill-after", "300ms", env, "--", "sh", run, dir)
			if c.stop != 0 {
				readPID(t, filepath.Join(dir, "grandchild.pid"))
				readPID(t, filepath.Join(dir, "stubborn.pid"))
				readPID(t, filepath.Join(dir, "cmd.pid"))
				if err := b.cmd.Process.Signal(c.stop); err != nil {
					t.Fatal(err)
				}
			}
			r := b.wait(t)
			if r.code != c.wantCode {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, c.wantCode, r.stdout, r.stderr)
			}
			res := execJSON(t, r)
			if c.check != nil {
				c.check(t, res)
			}
			if c.script == "" {
				treeGone(t, dir, append(treePIDs, "sup")...)
			} else {
				treeGone(t, dir, "child", "stubborn", "grandchild", "sup")
			}
		})
	}
}

// TestExecDiesWithItsCommand: a kill -9 of trusthandoff exec (or of its whole process
// group) takes the command's group down with it, grandchildren and SIGTERM-ignoring
// processes included; so does a kill -9 of the supervisor between them, which exec notices.
func TestExecDiesWithItsCommand(t *testing.T) {
	w := newWorld(t)
	script := w.write(t, "tree.sh", treeScript)
	cases := []struct {
		name string
		kill func(t *testing.T, b *background, dir string)
	}{
		{"kill -9 exec", func(t *testing.T, b *background, _ string) {
			if err := b.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}},
		{"kill -9 exec's process group", func(t *testing.T, b *background, _ string) {
			if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
		{"kill -9 the supervisor", func(t *testing.T, _ *background, dir string) {
			if err := syscall.Kill(readPID(t, filepath.Join(dir, "sup.pid")), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(w.dir, fmt.Sprintf("tree-%d", i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killTree(dir) })
			env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
			b := startTH(t, w.dir, "exec", "--registry", w.reg, "--state", w.state, "--kill-after", "300ms", env, "--", "sh", script, dir)
			for _, name := range append(treePIDs, "sup") {
				if pid := readPID(t, filepath.Join(dir, name+".pid")); processGone(pid) {
					t.Fatalf("%s (pid %d) is not running before the kill", name, pid)
				}
			}
			c.kill(t, b, dir)
			r := b.wait(t)
			treeGone(t, dir, append(treePIDs, "sup")...)
			if c.name == "kill -9 the supervisor" {
				// exec lives on, ends the group itself and reports the failure.
				if r.code != 4 || !strings.Contains(r.stderr, "supervisor") {
					t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
				if res := execJSON(t, r); res["ran"] != true || res["exit_code"] != nil {
					t.Fatalf("%v", res)
				}
			}
		})
	}
}

// TestExecSupervisorIsNotACommand: the supervisor's marker argument does not make the CLI
// run a command without verification when it lacks exec's descriptors and arguments.
func TestExecSupervisorIsNotACommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ran")
	for _, args := range [][]string{
		{supervisorArg},
		{supervisorArg, "--", "touch", out},
		{supervisorArg, "x", "background", "--", "touch", out},
		{supervisorArg, "1000000", "background", "--", "touch", out}, // without exec's pipes
	} {
		r := th(t, "", args...)
		if r.code == 0 {
			t.Fatalf("%v: exit 0", args)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v ran the command", args)
		}
	}
}
