//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// The supervisor is this binary started by exec with supervisorArg first (see
// procgroup_unix.go). It is recognised here, before the CLI parses its arguments, and never
// returns to the CLI.
func init() {
	if len(os.Args) > 1 && os.Args[1] == supervisorArg {
		os.Exit(supervise(os.Args[2:]))
	}
}

// supervise runs the command of args (KILL_AFTER_NS MODE -- ARGV...) as the leader of a new
// process group, and ends the whole group when the command exits, when the control pipe
// reaches end-of-file (exec stopped the handoff, or died), or when it is sent SIGTERM,
// SIGINT or SIGHUP. It reports on the status pipe and returns its own exit code.
func supervise(args []string) int {
	// The command gets the parent-death signal when the thread that started it exits: keep
	// the main goroutine on its thread, which lives as long as the supervisor.
	runtime.LockOSThread()
	if len(args) < 4 || args[2] != "--" || !isPipe(supervisorCtrlFD) || !isPipe(supervisorStatusFD) {
		fmt.Fprintln(os.Stderr, "trusthandoff: error: the exec supervisor is started by 'trusthandoff exec' only")
		return exitUsage
	}
	status := os.NewFile(supervisorStatusFD, "status")
	ctrl := os.NewFile(supervisorCtrlFD, "control")
	report := func(format string, a ...any) { fmt.Fprintf(status, format+"\n", a...) }
	killAfter, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || killAfter < 0 {
		report("error bad kill-after %q", args[0])
		return exitUsage
	}
	foreground := args[1] == "foreground"
	argv := args[3:]
	// Neither pipe may reach the command: a copy of the status pipe's write end would keep
	// exec waiting after the supervisor is gone.
	syscall.CloseOnExec(supervisorCtrlFD)
	syscall.CloseOnExec(supervisorStatusFD)

	// Before the command starts, so that no signal is missed.
	stopSig := make(chan os.Signal, 1)
	signal.Notify(stopSig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	childSig := make(chan os.Signal, 1)
	signal.Notify(childSig, syscall.SIGCHLD)
	adoptOrphans()

	path, err := exec.LookPath(argv[0])
	if err != nil {
		report("error starting %s: %v", argv[0], err)
		return 0
	}
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: os.Environ(), Files: files, Sys: commandAttr(foreground)})
	if err != nil && foreground {
		// The terminal could not be handed over (it went away, or is not ours after all).
		p, err = os.StartProcess(path, argv, &os.ProcAttr{Env: os.Environ(), Files: files, Sys: commandAttr(false)})
	}
	if err != nil {
		report("error starting %s: %v", argv[0], err)
		return 0
	}
	defer p.Release()
	pgid := p.Pid
	report("started %d", pgid)

	// Reap every child: the command, and on Linux the orphans of its group adopted by the
	// supervisor (child subreaper), so that zombies do not keep the group alive.
	exited := make(chan syscall.WaitStatus, 1)
	reap := func() {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				return
			}
			if pid == p.Pid && (ws.Exited() || ws.Signaled()) {
				exited <- ws
			}
		}
	}
	go func() {
		for range childSig {
			reap()
		}
	}()
	reap() // in case the command ended before the first SIGCHLD was noticed

	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, ctrl) // ends at end-of-file: exec closed it, or died
		close(stop)
	}()

	var ws syscall.WaitStatus
	select {
	case ws = <-exited:
		endGroup(pgid, time.Duration(killAfter), reap) // what it left behind
	case <-stop:
		ws = stopGroup(pgid, time.Duration(killAfter), reap, exited)
	case <-stopSig:
		ws = stopGroup(pgid, time.Duration(killAfter), reap, exited)
	}
	if ws.Signaled() {
		report("signal %d", int(ws.Signal()))
	} else {
		report("exit %d", ws.ExitStatus())
	}
	return 0
}

// isPipe reports whether descriptor fd is open on a pipe, as exec's descriptors are.
func isPipe(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO
}

// stopGroup ends the group of a running command and returns the command's wait status.
func stopGroup(pgid int, killAfter time.Duration, reap func(), exited <-chan syscall.WaitStatus) syscall.WaitStatus {
	endGroup(pgid, killAfter, reap)
	select {
	case ws := <-exited:
		return ws
	case <-time.After(groupKillWait):
		// Not reaped yet (uninterruptible sleep): it has had SIGKILL and will die.
		return syscall.WaitStatus(syscall.SIGKILL)
	}
}
