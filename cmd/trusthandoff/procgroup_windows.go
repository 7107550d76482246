package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// How exec contains a command on Windows.
//
// The command is created suspended, assigned to a new job object, and only then resumed,
// so it and every process it starts belong to the job from their first instruction. The
// job is created with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and its only handle is exec's (it
// is not inheritable): when exec exits or is killed, the system closes the handle and ends
// every process of the job. To stop the command (expiry, revocation, Ctrl-C), exec sends
// CTRL_BREAK_EVENT to its process group (created with CREATE_NEW_PROCESS_GROUP; only
// console programs receive it) and terminates the whole job after --kill-after. When the
// command exits on its own, whatever it left in the job is terminated at once. A process
// can leave the job only if it was created with CREATE_BREAKAWAY_FROM_JOB and the job
// allowed it; this one does not.

var procNtResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

// runContained runs argv in a job object until it exits or ctx is done; see above.
// started reports whether the command started; code is its exit code when it ended on its
// own, nil when ctx stopped it.
func runContained(ctx context.Context, argv, env []string, killAfter time.Duration) (started bool, code *int, err error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return false, nil, fmt.Errorf("creating a job object: %w", err)
	}
	defer windows.CloseHandle(job)
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		return false, nil, fmt.Errorf("configuring the job object: %w", err)
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		return false, nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|windows.PROCESS_SUSPEND_RESUME, false, uint32(cmd.Process.Pid))
	if err == nil {
		defer windows.CloseHandle(h)
		err = windows.AssignProcessToJobObject(job, h)
	}
	if err == nil {
		if st, _, _ := procNtResumeProcess.Call(uintptr(h)); st != 0 {
			err = fmt.Errorf("NtResumeProcess: status %#x", st)
		}
	}
	if err != nil {
		_ = cmd.Process.Kill() // still suspended: it never ran
		_ = cmd.Wait()
		return false, nil, fmt.Errorf("containing %s in a job object: %w", argv[0], err)
	}

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
		_ = windows.TerminateJobObject(job, 1) // what it left behind
	case <-ctx.Done():
		_ = windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(cmd.Process.Pid))
		t := time.NewTimer(killAfter)
		defer t.Stop()
		select {
		case <-waited:
			_ = windows.TerminateJobObject(job, 1)
		case <-t.C:
			_ = windows.TerminateJobObject(job, 1)
			<-waited
		}
		return true, nil, nil
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		c := 0
		return true, &c, nil
	case errors.As(werr, &ee):
		c := ee.ExitCode()
		return true, &c, nil
	}
	return true, nil, werr
}
