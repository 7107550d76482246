package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestUnknownOrMissingCommandsExit2: a typo in a command or subcommand is a usage error, never
// a help text with exit 0 that a script would take for success.
func TestUnknownOrMissingCommandsExit2(t *testing.T) {
	w := newWorld(t)
	for name, tc := range map[string]struct {
		args []string
		want string // in stderr
	}{
		"unknown top-level":            {[]string{"frobnicate"}, `unknown command "frobnicate"`},
		"near miss of verify":          {[]string{"verfy", "x.json"}, `unknown command "verfy"`},
		"no command":                   {nil, "needs a command"},
		"unknown registry subcommand":  {[]string{"registry", "bogus"}, `unknown command "bogus" for "trusthandoff registry"`},
		"registry subcommand + flags":  {[]string{"registry", "delete", "--registry", w.reg}, `unknown command "delete"`},
		"registry without subcommand":  {[]string{"registry"}, `"trusthandoff registry" needs a command`},
		"unknown audit subcommand":     {[]string{"audit", "bogus"}, `unknown command "bogus" for "trusthandoff audit"`},
		"audit subcommand typo":        {[]string{"audit", "verfy", "log.jsonl"}, `unknown command "verfy"`},
		"audit without subcommand":     {[]string{"audit"}, `"trusthandoff audit" needs a command`},
		"unknown completion shell":     {[]string{"completion", "tcsh"}, `unknown command "tcsh"`},
		"completion without shell":     {[]string{"completion"}, "needs a command"},
		"help for an unknown command":  {[]string{"help", "bogus"}, `unknown help topic "bogus"`},
		"help for unknown subcommand":  {[]string{"help", "registry", "bogus"}, `unknown help topic "registry bogus"`},
		"extra argument to a leaf":     {[]string{"registry", "list", "--registry", w.reg, "extra"}, `unknown command "extra"`},
		"unknown flag of a subcommand": {[]string{"registry", "list", "--bogus"}, "unknown flag: --bogus"},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustTH(t, 2, "", tc.args...)
			if !strings.HasPrefix(r.stderr, "trusthandoff: error: ") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr %q, want an error with %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Fatalf("usage error wrote to stdout: %q", r.stdout)
			}
		})
	}
	// asking for help is not an error
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "registry"}, {"help", "registry", "add"}, {"registry", "--help"}, {"audit", "verify", "--help"}} {
		if r := mustTH(t, 0, "", args...); !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: no usage on stdout: %q", args, r.stdout)
		}
	}
}

// TestRootHelpListsEveryExitCode: the exit codes scripts rely on, exec's 4 included, are in
// the root --help.
func TestRootHelpListsEveryExitCode(t *testing.T) {
	out := mustTH(t, 0, "", "--help").stdout
	_, codes, ok := strings.Cut(out, "Exit codes:")
	if !ok {
		t.Fatalf("no exit codes in --help:\n%s", out)
	}
	codes, _, _ = strings.Cut(codes, "\n\n")
	for _, want := range []string{"0 accepted", "1 rejected", "2 usage error", "3 store unavailable", "4 exec"} {
		if !strings.Contains(strings.Join(strings.Fields(codes), " "), want) {
			t.Errorf("exit codes in --help lack %q:\n%s", want, codes)
		}
	}
}

// TestStateIOFailuresExit3: a state directory that cannot be opened, created or written is a
// store failure (exit 3, and verify still answers with a store_unavailable REJECT), never a
// usage error and never an accept.
func TestStateIOFailuresExit3(t *testing.T) {
	w := newWorld(t)
	cases := map[string]func(t *testing.T) string{
		"state is a file": func(t *testing.T) string {
			return w.write(t, "state-file", "x")
		},
		"state under a file": func(t *testing.T) string {
			return filepath.Join(w.write(t, "parent-file", "x"), "state")
		},
		"lock file is a directory": func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.MkdirAll(filepath.Join(dir, "LOCK"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		"corrupt database": func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "state")
			mustTH(t, 0, "", "revoke", "--state", dir, "--agent-id", "agent:seed")
			if err := os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("garbage\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		"dangling symlink": func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "state")
			if err := os.Symlink(filepath.Join(t.TempDir(), "gone", "nowhere"), link); err != nil {
				t.Skip("no symlinks:", err)
			}
			return link
		},
		"unwritable parent": func(t *testing.T) string {
			if runtime.GOOS == "windows" || os.Geteuid() == 0 {
				t.Skip("permissions do not bind root (or Windows)")
			}
			parent := t.TempDir()
			if err := os.Chmod(parent, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(parent, 0o700) })
			return filepath.Join(parent, "state")
		},
		"unwritable state directory": func(t *testing.T) string {
			if runtime.GOOS == "windows" || os.Geteuid() == 0 {
				t.Skip("permissions do not bind root (or Windows)")
			}
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			return dir
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			state := mk(t)
			env := sign(t, w, "alice", "bob", "--actions", "read_tickets")

			r := mustTH(t, 3, "", "verify", "--registry", w.reg, "--state", state, env)
			wantReason(t, r.json(t), "REJECT", "store_unavailable")
			if !strings.Contains(r.stderr, "trusthandoff: error: ") {
				t.Fatalf("stderr %q", r.stderr)
			}
			mustTH(t, 3, "", "revoke", "--state", state, "--agent-id", w.ids["carol"])
			ran := filepath.Join(w.dir, "ran-"+strings.ReplaceAll(name, " ", "-"))
			mustTH(t, 3, "", "exec", "--registry", w.reg, "--state", state, env, "--", "touch", ran)
			if _, err := os.Stat(ran); err == nil {
				t.Fatal("exec ran the command without its state")
			}
			att := w.write(t, "att-"+strings.ReplaceAll(name, " ", "-")+".json",
				mustTH(t, 0, "", "attest", "--key", w.key("bob"), "--envelope", env, "--status", "OK", "--result", "{}").stdout)
			mustTH(t, 3, "", "verify-attestation", "--registry", w.reg, "--state", state, "--result", "{}", att)
		})
	}
}
