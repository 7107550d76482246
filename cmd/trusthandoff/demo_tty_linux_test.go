package main

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestDemoColorOnATerminal: on a terminal the verdicts are coloured (green ACCEPT, red
// REJECT), unless NO_COLOR is set.
func TestDemoColorOnATerminal(t *testing.T) {
	cases := []struct {
		name      string
		env       []string
		wantColor bool
	}{
		{"coloured", demoEnv("TERM=xterm"), true},
		{"NO_COLOR", demoEnv("TERM=xterm", "NO_COLOR=1"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			master, slave := openPTY(t)
			defer master.Close()
			cmd := exec.Command(binary, "demo")
			cmd.Env = c.env
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			slave.Close()
			// Read until the demo exits: the master reads EIO once no process holds the slave.
			var out bytes.Buffer
			_, _ = io.Copy(&out, master)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("demo on a terminal: %v\n%s", err, out.String())
			}
			got := out.String()
			checkDemoText(t, got)
			hasColor := strings.Contains(got, "\x1b[1;32mACCEPT\x1b[0m") && strings.Contains(got, "\x1b[1;31mREJECT\x1b[0m")
			if hasColor != c.wantColor {
				t.Errorf("coloured = %v, want %v:\n%q", hasColor, c.wantColor, got)
			}
			if !c.wantColor && strings.Contains(got, "\x1b[") {
				t.Errorf("escape sequences with NO_COLOR:\n%q", got)
			}
		})
	}
}
