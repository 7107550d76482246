package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// startBaseline runs 'loadtest baseline' on a free loopback port and returns its URL.
func startBaseline(t *testing.T, reg string) string {
	t.Helper()
	cmd := exec.Command(binary, "loadtest", "baseline", "--listen", "127.0.0.1:0", "--registry", reg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("baseline did not report its address: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(line), &m); err != nil || m["listen"] == "" {
		t.Fatalf("baseline printed %q", line)
	}
	return "http://" + m["listen"]
}

type loadOut struct {
	Runs []struct {
		Round     int               `json:"round"`
		Target    string            `json:"target"`
		Requests  uint64            `json:"requests"`
		Errors    uint64            `json:"errors"`
		Decisions map[string]uint64 `json:"decisions"`
		Reasons   map[string]uint64 `json:"reasons"`
		Exhausted bool              `json:"bodies_exhausted"`
	} `json:"runs"`
	Summary []struct {
		Target string   `json:"target"`
		Runs   int      `json:"runs"`
		RPS    float64  `json:"requests_per_second_median"`
		Ratio  *float64 `json:"requests_per_second_vs_first"`
		P99    *float64 `json:"p99_vs_first"`
	} `json:"summary"`
}

func TestLoadtestAgainstBaseline(t *testing.T) {
	w := newWorld(t)
	url := startBaseline(t, w.reg)
	r := mustTH(t, 0, "", "loadtest", "--target", url+"/a", "--target", url+"/b", "--rounds", "2",
		"--sign-key", w.key("alice"), "--to", w.ids["bob"], "--actions", "read_tickets",
		"--requests", "150", "--connections", "4", "--json")
	if r.stderr != "" {
		t.Fatalf("--json wrote to stderr: %s", r.stderr)
	}
	var out loadOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Runs) != 4 || len(out.Summary) != 2 {
		t.Fatalf("runs %d, summary %d:\n%s", len(out.Runs), len(out.Summary), r.stdout)
	}
	for i, run := range out.Runs {
		wantTarget := url + "/a"
		if i%2 == 1 {
			wantTarget = url + "/b"
		}
		if run.Target != wantTarget || run.Round != i/2+1 || run.Requests != 150 || run.Errors != 0 ||
			run.Decisions["ACCEPT"] != 150 || !run.Exhausted {
			t.Fatalf("run %d: %+v", i, run)
		}
	}
	if out.Summary[0].Ratio != nil || out.Summary[1].Ratio == nil || *out.Summary[1].Ratio <= 0 || out.Summary[1].Runs != 2 {
		t.Fatalf("summary %+v", out.Summary)
	}

	// One body on every request: the baseline keeps no state and accepts them all; the
	// human summary goes to stderr.
	env := mustTH(t, 0, "", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x").stdout
	body := w.write(t, "env.json", env)
	r = mustTH(t, 0, "", "loadtest", "--target", url, "--body", body, "--requests", "40", "--connections", "2")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Runs[0].Requests != 40 || out.Runs[0].Decisions["ACCEPT"] != 40 || !strings.Contains(r.stderr, "req/s") {
		t.Fatalf("run %+v\nstderr %s", out.Runs[0], r.stderr)
	}

	// A directory of bodies: each once.
	dir := filepath.Join(w.dir, "bodies")
	os.Mkdir(dir, 0o700)
	for _, n := range []string{"1.json", "2.json", "3.json"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r = mustTH(t, 0, "", "loadtest", "--target", url, "--bodies", dir, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Runs[0].Requests != 3 || !out.Runs[0].Exhausted {
		t.Fatalf("run %+v", out.Runs[0])
	}
}

func TestLoadtestUsageAndUnavailable(t *testing.T) {
	w := newWorld(t)
	loose := w.write(t, "loose.token", "tok")
	os.Chmod(loose, 0o644)
	tight := w.write(t, "tight.token", "tok\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()
	cases := []struct {
		name string
		code int
		args []string
	}{
		{"no target", 2, nil},
		{"remote target", 2, []string{"--target", "http://192.0.2.1/"}},
		{"token file readable by others", 2, []string{"--target", closed, "--token-file", loose}},
		{"to without key", 2, []string{"--target", closed, "--to", w.ids["bob"]}},
		{"bad recipient", 2, []string{"--target", closed, "--sign-key", w.key("alice"), "--to", "bob"}},
		{"rounds", 2, []string{"--target", closed, "--rounds", "0"}},
		{"body and sign-key", 2, []string{"--target", closed, "--body", tight, "--sign-key", w.key("alice")}},
		{"unknown subcommand-like arg", 2, []string{"nonsense"}},
		{"nothing listening", 3, []string{"--target", closed, "--token-file", tight, "--requests", "5", "--json"}},
		{"baseline on a public address", 2, []string{"baseline", "--listen", "0.0.0.0:0", "--registry", w.reg}},
		{"baseline without registry", 2, []string{"baseline", "--listen", "127.0.0.1:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustTH(t, tc.code, "", append([]string{"loadtest"}, tc.args...)...)
			if strings.Contains(r.stderr, "tok\n") {
				t.Fatalf("token in stderr: %s", r.stderr)
			}
			if tc.code == 3 {
				var out loadOut
				if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Runs[0].Errors != 5 {
					t.Fatalf("stdout %s (%v)", r.stdout, err)
				}
			}
		})
	}
}
