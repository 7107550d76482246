package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// mutate returns the envelope in file with change applied to its packet, encoded without
// HTML escaping so a '<' stays one byte in the input (and six in a naive log line).
func mutate(t *testing.T, file string, change func(p map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	change(env["packet"].(map[string]any))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// hostileEnvelopes are envelopes under the 1 MiB limit whose fields end up in audit
// events: each would once have made a record over the reader's line limit.
func hostileEnvelopes(t *testing.T, w *world) map[string]string {
	t.Helper()
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	huge := strings.Repeat("<", 900_000)
	set := func(field string, v any) string {
		return mutate(t, env, func(p map[string]any) { p[field] = v })
	}
	actions := make([]any, 80_000)
	for i := range actions {
		actions[i] = fmt.Sprintf("<<<<%d", i)
	}
	base, _ := os.ReadFile(env)
	// As long as the envelope allows: in a naive record the id appears three times, each
	// '<' escaped to six bytes, 18 MiB in all.
	longest := strings.Repeat("<", 1<<20-len(base)-200)
	cases := map[string]string{
		"huge packet_id":        set("packet_id", longest),
		"huge nonce":            set("nonce", huge),
		"huge intent":           set("intent", huge),
		"huge from_agent":       set("from_agent", huge),
		"huge to_agent":         set("to_agent", huge),
		"thousands of actions":  mutate(t, env, func(p map[string]any) { p["permissions"].(map[string]any)["allowed_actions"] = actions }),
		"huge unknown field":    set(huge, 1),
		"huge context":          set("context", map[string]any{huge[:400_000]: huge[:400_000]}),
		"megabyte of not-JSON":  strings.Repeat("<", 1<<20-1),
		"control escapes":       set("packet_id", strings.Repeat("\x01", 150_000)),
		"quotes in packet_id":   set("packet_id", strings.Repeat(`"\`, 200_000)),
		"line separators in id": set("packet_id", strings.Repeat("\u2028", 150_000)),
	}
	for name, c := range cases {
		if len(c) > 1<<20 {
			t.Fatalf("%s: envelope of %d bytes is over the limit", name, len(c))
		}
	}
	return cases
}

// Rule: no envelope under the size limit produces a record that audit verify refuses.
func TestAuditLogSurvivesHostileEnvelopes(t *testing.T) {
	w := newWorld(t)
	log := filepath.Join(w.dir, "audit.jsonl")
	for name, env := range hostileEnvelopes(t, w) {
		t.Run(name, func(t *testing.T) {
			// Each case on a fresh log of its own, then all of them on one shared log.
			own := filepath.Join(t.TempDir(), "audit.jsonl")
			for _, path := range []string{own, log} {
				r := th(t, env, "verify", "--registry", w.reg, "--state", w.state, "--audit-log", path, "-")
				if r.code != 0 && r.code != 1 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				if d := r.json(t); d["decision"] == nil {
					t.Fatalf("no decision: %v", d)
				}
				got := mustTH(t, 0, "", "audit", "verify", path).json(t)
				if got["intact"] != true {
					t.Fatalf("audit verify: %v", got)
				}
			}
		})
	}
	// A genuine handoff still verifies after all of them, onto the same chain.
	w.verify(t, 0, sign(t, w, "alice", "bob", "--actions", "read_tickets"), "--audit-log", log)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < len(hostileEnvelopes(t, w)) {
		t.Fatalf("%d records", len(lines))
	}
	for i, line := range lines {
		if len(line) >= audit.MaxLineBytes {
			t.Fatalf("record %d is %d bytes", i+1, len(line))
		}
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		for _, s := range []string{rec.EventID, rec.CorrelationID, rec.IdempotencyKey, rec.ProducerID, rec.EventType} {
			if len(s) > audit.MaxStringBytes {
				t.Fatalf("record %d has a header field of %d bytes", i+1, len(s))
			}
		}
	}
	if got := mustTH(t, 0, "", "audit", "verify", log).json(t); got["records"] != float64(len(lines)) {
		t.Fatalf("audit verify: %v, file has %d lines", got, len(lines))
	}
	// The bounded form keeps a prefix and the sha256 of the original.
	if !strings.Contains(string(data), `"packet_id":"<<<<`) || !strings.Contains(string(data), "<...[truncated 900000 bytes sha256:") || !strings.Contains(string(data), "bytes sha256:") {
		t.Fatal("no bounded packet_id in the log")
	}
}

// Rule: audit verify never stops at a long line with exit 2; a line no writer produces is
// a broken record (exit 1) named by its number.
func TestAuditVerifyLongLines(t *testing.T) {
	w := newWorld(t)
	good := filepath.Join(w.dir, "good.jsonl")
	w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", good)
	w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", good)
	prefix, _ := os.ReadFile(good)
	over := strings.Repeat("x", 17<<20)
	cases := map[string]struct {
		log, record string
	}{
		"over-long line after two records": {string(prefix) + over + "\n", "record 3"},
		"over-long line, no newline":       {string(prefix) + over, "record 3"},
		"over-long first line":             {over + "\n" + string(prefix), "record 1"},
		"over-long well-formed record":     {string(prefix) + `{"seq":3,"prev_hash":"","pad":"` + over + `"}` + "\n", "record 3"},
		"over-long line of spaces":         {string(prefix) + strings.Repeat(" ", 17<<20) + "\n", "record 3"},
		"record cut short":                 {string(prefix[:len(prefix)-40]), "record 2"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := w.write(t, "crafted.jsonl", c.log)
			got := mustTH(t, 1, "", "audit", "verify", path).json(t)
			if got["intact"] != false || !strings.Contains(got["error"].(string), c.record) {
				t.Fatalf("audit verify: %v, want a break at %s", got, c.record)
			}
		})
	}
}

// Rule: many processes appending to one log keep its chain intact, and each answers.
func TestAuditLogConcurrentProcesses(t *testing.T) {
	w := newWorld(t)
	log := w.write(t, "audit.jsonl", "") // so the readers find it
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	hostile := hostileEnvelopes(t, w)["huge packet_id"]
	const verifiers, hostiles, readers = 16, 4, 4
	type proc struct {
		cmd      *exec.Cmd
		out, err bytes.Buffer
		accept   bool
	}
	var procs []*proc
	start := func(stdin string, accept bool, args ...string) {
		p := &proc{cmd: exec.Command(binary, args...), accept: accept}
		p.cmd.Stdin = strings.NewReader(stdin)
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	for i := range verifiers {
		// Each with its own state: every one of them accepts the same envelope.
		start("", true, "verify", "--registry", w.reg, "--state", filepath.Join(w.dir, fmt.Sprint("state", i)), "--audit-log", log, env)
		if i < hostiles {
			start(hostile, false, "verify", "--registry", w.reg, "--state", filepath.Join(w.dir, fmt.Sprint("hstate", i)), "--audit-log", log, "-")
		}
		if i < readers {
			start("", false, "audit", "verify", log)
		}
	}
	accepted := 0
	for _, p := range procs {
		err := p.cmd.Wait()
		code := p.cmd.ProcessState.ExitCode()
		args := strings.Join(p.cmd.Args[1:3], " ")
		var d map[string]any
		if jerr := json.Unmarshal(p.out.Bytes(), &d); jerr != nil {
			t.Fatalf("%s: exit %d (%v), no JSON answer: %s %s", args, code, err, p.out.String(), p.err.String())
		}
		switch {
		case p.cmd.Args[1] == "audit":
			if code != 0 || d["intact"] != true {
				t.Errorf("a reader during the writes: exit %d %v", code, d)
			}
		case p.accept:
			if code != 0 || d["decision"] != "ACCEPT" {
				t.Errorf("verifier: exit %d %v %s", code, d, p.err.String())
			}
			accepted++
		default:
			if code != 1 || d["decision"] != "REJECT" {
				t.Errorf("hostile: exit %d %v %s", code, d, p.err.String())
			}
		}
	}
	got := mustTH(t, 0, "", "audit", "verify", log).json(t)
	data, _ := os.ReadFile(log)
	lines := strings.Count(string(data), "\n")
	if got["intact"] != true || got["records"] != float64(lines) || lines < verifiers+hostiles {
		t.Fatalf("audit verify: %v; %d lines", got, lines)
	}
	if n := strings.Count(string(data), `"event_type":"packet_accepted"`); n != accepted || n != verifiers {
		t.Fatalf("%d packet_accepted records, %d acceptances", n, accepted)
	}
	if n := strings.Count(string(data), `"event_type":"packet_rejected"`); n != hostiles {
		t.Fatalf("%d packet_rejected records, want %d", n, hostiles)
	}
}

// Rule: an audit log that cannot be opened, locked or written is an unavailable store
// (exit 3), not a usage error; an audit log given to audit verify that does not exist is.
func TestAuditLogUnavailableExit3(t *testing.T) {
	w := newWorld(t)
	notADir := w.write(t, "file", "x")
	cases := map[string]string{
		"missing folder":       filepath.Join(w.dir, "missing", "audit.jsonl"),
		"a directory":          w.dir,
		"under a regular file": filepath.Join(notADir, "audit.jsonl"),
	}
	if p := mkfifo(t, w.dir); p != "" {
		cases["a FIFO"] = p
	}
	if os.Geteuid() != 0 { // root writes anyway
		ro := w.write(t, "readonly.jsonl", "")
		os.Chmod(ro, 0o400)
		cases["read-only file"] = ro
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			for _, cmd := range [][]string{
				{"verify", "--registry", w.reg, "--state", w.state, "--audit-log", path, sign(t, w, "alice", "bob")},
				{"exec", "--registry", w.reg, "--state", w.state, "--audit-log", path, sign(t, w, "alice", "bob"), "--", "true"},
			} {
				r := mustTH(t, 3, "", cmd...)
				if !strings.Contains(r.stderr, "trusthandoff: error: --audit-log: audit log unavailable") {
					t.Fatalf("%s: stderr %q", cmd[0], r.stderr)
				}
			}
		})
	}
	// audit verify: a missing or irregular FILE is unusable input (2); an unreadable one is
	// an I/O failure (3).
	mustTH(t, 2, "", "audit", "verify", filepath.Join(w.dir, "missing.jsonl"))
	mustTH(t, 2, "", "audit", "verify", w.dir)
	if p, ok := cases["a FIFO"]; ok {
		mustTH(t, 2, "", "audit", "verify", p) // and does not block reading it
	}
	if os.Geteuid() != 0 {
		unreadable := w.write(t, "unreadable.jsonl", "")
		os.Chmod(unreadable, 0)
		mustTH(t, 3, "", "audit", "verify", unreadable)
	}
}

// The help text states the exit codes and the bound.
func TestAuditVerifyHelp(t *testing.T) {
	out := mustTH(t, 0, "", "audit", "verify", "--help").stdout
	for _, want := range []string{"0 intact", "1 broken", "3 LOG cannot be locked or read", "bounded"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
