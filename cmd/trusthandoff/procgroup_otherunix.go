//go:build unix && !linux

package main

import "syscall"

// adoptOrphans does nothing here: there is no child subreaper (orphans go to init, which
// reaps them, so they do not keep the command's group alive).
func adoptOrphans() {}

// commandAttr starts the command as the leader of a new process group, in the terminal's
// foreground when foreground is set. There is no parent-death signal: if the supervisor
// itself is killed, exec ends the group (see runContained).
func commandAttr(foreground bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Foreground: foreground, Ctty: 0}
}
