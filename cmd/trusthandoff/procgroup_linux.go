package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// adoptOrphans makes the supervisor a child subreaper: processes of the command's group
// whose parent dies are re-parented to the supervisor, which reaps them, instead of to
// init (which in a container may never reap them, leaving zombies that keep the group
// alive). Best effort: on failure the supervisor waits out --kill-after instead.
func adoptOrphans() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }

// commandAttr starts the command as the leader of a new process group (in the terminal's
// foreground when foreground is set), killed by the kernel if the supervisor dies.
func commandAttr(foreground bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Foreground: foreground, Ctty: 0, Pdeathsig: syscall.SIGKILL}
}
