//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How exec contains a command on Unix.
//
// exec starts a small supervisor (this binary again, see supervise), and the supervisor
// starts the command as the leader of a new process group. Whatever the command starts
// stays in that group unless it leaves it on purpose (setsid, setpgid), so ending the
// group ends the command and its children and grandchildren.
//
//	trusthandoff exec ── supervisor (own group) ── command (leads group G) ── children …
//
// exec holds the write end of a pipe whose read end only the supervisor has. exec closes
// it to stop the command (expiry, revocation, SIGINT/SIGTERM/SIGHUP); the kernel closes it
// when exec dies, kill -9 included. Either way the supervisor reads end-of-file and ends
// group G: SIGTERM, then SIGKILL once --kill-after has passed with any process left. The
// supervisor does the same when the command exits on its own and left processes behind.
// It runs in a process group of its own, so a signal to exec's group (a terminal's ^C, a
// kill of the job) does not take it down before it has ended G. On Linux the command also
// gets SIGKILL if the supervisor itself dies (parent-death signal), and the supervisor is a
// child subreaper, so it reaps the orphans of group G and can tell when G is empty. If the
// supervisor dies before reporting that the command ended, exec ends group G itself.
//
// A command that reads a terminal gets the terminal's foreground (so that it is not
// stopped by SIGTTIN), and exec takes the foreground back when the group has ended.

// supervisorArg is the first argument of the supervisor's command line. It is not a
// subcommand: it is recognised before the CLI parses anything (see init in
// procgroup_supervisor_unix.go), and the supervisor needs descriptors only exec passes.
const supervisorArg = "__trusthandoff_exec_supervisor__"

// Descriptors of the supervisor (after stdin, stdout, stderr).
const (
	supervisorCtrlFD   = 3 // read end: end-of-file means end the group
	supervisorStatusFD = 4 // write end: the supervisor's status lines
)

// groupKillWait bounds the wait for a group to empty after SIGKILL: processes in
// uninterruptible sleep die only when they wake up, and zombies whose parent does not reap
// them stay members; neither may hold exec forever.
const groupKillWait = 2 * time.Second

// runContained runs argv, with environment env and exec's stdin, stdout and stderr, in a
// process group of its own under a supervisor, until it exits or ctx is done; then the
// whole group is ended. started reports whether the command started; code is its exit
// status when it ended on its own (its exit code, or -1 when a signal ended it), nil when
// ctx stopped it.
func runContained(ctx context.Context, argv, env []string, killAfter time.Duration) (started bool, code *int, err error) {
	self, err := os.Executable()
	if err != nil {
		return false, nil, fmt.Errorf("locating the supervisor (this executable): %w", err)
	}
	ctrlR, ctrlW, err := os.Pipe()
	if err != nil {
		return false, nil, err
	}
	defer ctrlW.Close()
	statR, statW, err := os.Pipe()
	if err != nil {
		ctrlR.Close()
		return false, nil, err
	}
	defer statR.Close()

	fg := ownsTerminal()
	mode := "background"
	if fg {
		mode = "foreground"
	}
	sup := exec.Command(self, append([]string{supervisorArg, strconv.FormatInt(int64(killAfter), 10), mode, "--"}, argv...)...)
	sup.Env = env
	sup.Stdin, sup.Stdout, sup.Stderr = os.Stdin, os.Stdout, os.Stderr
	sup.ExtraFiles = []*os.File{ctrlR, statW} // descriptors 3 and 4
	sup.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = sup.Start()
	ctrlR.Close() // exec keeps only its ends: the supervisor's read of ctrl ends when exec dies
	statW.Close()
	if err != nil {
		return false, nil, fmt.Errorf("starting the supervisor: %w", err)
	}
	if fg {
		defer reclaimTerminal()
	}

	lines := make(chan supervisorStatus, 4)
	go readSupervisorStatus(statR, lines)

	var (
		pgid     int
		final    *supervisorStatus
		stopping bool
		backstop <-chan time.Time
	)
	done := ctx.Done()
	for lines != nil {
		select {
		case <-done:
			done, stopping = nil, true
			ctrlW.Close() // the supervisor ends the group
			// It takes at most killAfter plus groupKillWait; past that, do it from here.
			t := time.NewTimer(killAfter + groupKillWait + time.Second)
			defer t.Stop()
			backstop = t.C
		case <-backstop:
			backstop = nil
			if pgid > 0 {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
			_ = sup.Process.Kill()
		case s, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			switch s.kind {
			case "started":
				pgid = s.n
			case "exit", "signal", "error":
				final = &s
			}
		}
	}
	_ = sup.Wait()
	ctrlW.Close()
	if final == nil {
		// The supervisor died before the command was known to have ended: end the group here.
		if pgid > 0 {
			endGroup(pgid, killAfter, nil)
		}
		if stopping {
			return pgid > 0, nil, nil
		}
		return pgid > 0, nil, errors.New("the supervisor of the command died; its process group was ended")
	}
	switch final.kind {
	case "error":
		return false, nil, errors.New(final.text)
	case "signal":
		code := -1
		if stopping {
			return true, nil, nil
		}
		return true, &code, nil
	}
	if stopping {
		return true, nil, nil
	}
	code = &final.n
	return true, code, nil
}

// supervisorStatus is one status line of the supervisor:
//
//	started PGID    the command runs, leading process group PGID
//	exit CODE       it exited with CODE (its group has been ended)
//	signal NUMBER   a signal ended it (its group has been ended)
//	error TEXT      it could not be started
type supervisorStatus struct {
	kind string
	n    int
	text string
}

func readSupervisorStatus(r io.Reader, out chan<- supervisorStatus) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 4096)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		s := supervisorStatus{kind: kind, text: rest}
		switch kind {
		case "started", "exit", "signal":
			n, err := strconv.Atoi(rest)
			if err != nil {
				continue
			}
			s.n = n
		case "error":
		default:
			continue
		}
		out <- s
	}
}

// endGroup ends process group pgid: SIGTERM, then SIGKILL when any process is left after
// killAfter. It returns once the group is empty, or groupKillWait after the SIGKILL. reap,
// when set, is called while waiting (the supervisor reaps the orphans it adopted).
func endGroup(pgid int, killAfter time.Duration, reap func()) {
	if pgid <= 0 {
		return // never signal every process of the caller's group, or all processes
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	if waitGroupGone(pgid, killAfter, reap) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	waitGroupGone(pgid, groupKillWait, reap)
}

// waitGroupGone polls until process group pgid has no member or d has passed, and reports
// whether it is gone. Zombies count as members until their parent reaps them.
func waitGroupGone(pgid int, d time.Duration, reap func()) bool {
	deadline := time.Now().Add(d)
	for {
		if reap != nil {
			reap()
		}
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ownsTerminal reports whether exec's stdin is its controlling terminal and exec's process
// group is in the terminal's foreground: then the command's group must get the foreground,
// or reading the terminal would stop it (SIGTTIN).
func ownsTerminal() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == syscall.Getpgrp()
}

// reclaimTerminal puts exec's process group back in the terminal's foreground. exec is in
// the background at that moment, which would stop it with SIGTTOU unless it ignores it.
func reclaimTerminal() {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, syscall.Getpgrp())
}
