package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
)

// writeAuditLog appends count events named prefix-N to the log at path (creating it and
// its key, or using keyFile), closes it (which writes LOG.checkpoint) and returns the log
// key's verifier key.
func writeAuditLog(t *testing.T, path, keyFile, prefix string, count int) string {
	t.Helper()
	var opts []audit.FileOption
	if keyFile != "" {
		opts = append(opts, audit.WithKeyFile(keyFile))
	} else {
		keyFile = audit.KeyPath(path)
	}
	s, err := audit.OpenFile(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		ev := audit.Event{EventID: fmt.Sprintf("%s-%d", prefix, i), EventType: audit.PacketAccepted,
			Timestamp: time.Date(2026, 12, 2, 10, 0, i, 0, time.UTC), ProducerID: "test"}
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	k, err := audit.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := audit.VerifierKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// runningWitness is an "audit witness" process.
type runningWitness struct {
	cmd    *exec.Cmd
	url    string
	vkey   string
	stderr *strings.Builder
}

func startWitnessCLI(t *testing.T, key, state string, logs ...string) *runningWitness {
	t.Helper()
	args := []string{"audit", "witness", "--listen", "127.0.0.1:0", "--key", key, "--state", state}
	for _, l := range logs {
		args = append(args, "--log", l)
	}
	cmd := exec.Command(binary, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &runningWitness{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("witness did not start: %v\n%s", err, w.stderr)
	}
	go io.Copy(io.Discard, out)
	var hello struct{ Listening, Name, Vkey string }
	if err := json.Unmarshal([]byte(line), &hello); err != nil {
		t.Fatalf("first stdout line %q: %v", line, err)
	}
	w.url, w.vkey = "http://"+hello.Listening, hello.Vkey
	return w
}

// stop sends SIGINT and expects a clean exit.
func (w *runningWitness) stop(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("witness exit: %v\n%s", err, w.stderr)
	}
}

func TestAuditWitnessPushCLI(t *testing.T) {
	dir := t.TempDir()
	wkey := filepath.Join(dir, "witness.key")
	r := mustTH(t, 0, "", "audit", "witness-key", "--name", "witness.example/w1", "--out", wkey)
	wvkey := r.json(t)["vkey"].(string)
	if st, err := os.Stat(wkey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("witness key file: %v %v", st, err)
	}
	mustTH(t, 2, "", "audit", "witness-key", "--name", "witness.example/w1", "--out", wkey) // exists
	if got := mustTH(t, 0, "", "audit", "witness", "--key", wkey, "--show-key").json(t)["vkey"]; got != wvkey {
		t.Fatalf("--show-key %v, want %s", got, wvkey)
	}

	logPath := filepath.Join(dir, "audit.jsonl")
	logVkey := writeAuditLog(t, logPath, "", "a", 5)
	state := filepath.Join(dir, "state")
	w := startWitnessCLI(t, wkey, state, logVkey)
	if w.vkey != wvkey {
		t.Fatalf("witness announces %s, want %s", w.vkey, wvkey)
	}

	push := func(want int, log string, extra ...string) result {
		t.Helper()
		return mustTH(t, want, "", append([]string{"audit", "push", log, "--witness", w.url, "--witness-key", wvkey}, extra...)...)
	}
	out := push(0, logPath).json(t)
	if out["size"] != 5.0 || out["old_size"] != 0.0 || out["checkpoint"] != audit.CheckpointPath(logPath) {
		t.Fatalf("push output %v", out)
	}
	requireCosigned(t, audit.CheckpointPath(logPath), logVkey, wvkey, 5)

	// The log grows; the next push proves consistency from 5 and replaces the cosignature.
	writeAuditLog(t, logPath, "", "b", 3)
	keep := filepath.Join(dir, "cosigned.checkpoint")
	out = push(0, logPath, "--out", keep).json(t)
	if out["size"] != 8.0 || out["old_size"] != 5.0 {
		t.Fatalf("push output %v", out)
	}
	requireCosigned(t, audit.CheckpointPath(logPath), logVkey, wvkey, 8)
	requireCosigned(t, keep, logVkey, wvkey, 8)

	// Another history under the same log key: a fork at the same size, a longer fork, and
	// a shorter log (rollback) are all refused, and the state is not moved.
	logKey := audit.KeyPath(logPath)
	for _, c := range []struct {
		name  string
		count int
		want  string
	}{
		{"fork", 8, "fork"},
		{"longer-fork", 12, "consistency proof"},
		{"rollback", 3, "larger tree"},
	} {
		t.Run(c.name, func(t *testing.T) {
			other := filepath.Join(dir, c.name+".jsonl")
			writeAuditLog(t, other, logKey, "x", c.count)
			r := push(1, other)
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr %q does not say %q", r.stderr, c.want)
			}
		})
	}

	// Restart: the state survives; the fork is still refused, the real log goes on.
	w.stop(t)
	w = startWitnessCLI(t, wkey, state, logVkey)
	push(1, filepath.Join(dir, "fork.jsonl"))
	writeAuditLog(t, logPath, "", "c", 2)
	if out := push(0, logPath).json(t); out["size"] != 10.0 || out["old_size"] != 8.0 {
		t.Fatalf("after restart: %v", out)
	}

	// Edited log: its records no longer match its checkpoint, nothing is sent.
	data, _ := os.ReadFile(logPath)
	edited := filepath.Join(dir, "edited.jsonl")
	os.WriteFile(edited, []byte(strings.Replace(string(data), `"c-1"`, `"c-X"`, 1)), 0o600)
	cp, _ := os.ReadFile(audit.CheckpointPath(logPath))
	os.WriteFile(audit.CheckpointPath(edited), cp, 0o644)
	push(1, edited)

	// A second witness on the same state directory is refused (exit 3).
	r = mustTH(t, 3, "", "audit", "witness", "--listen", "127.0.0.1:0", "--key", wkey, "--state", state, "--log", logVkey)
	if !strings.Contains(r.stderr, "in use") {
		t.Fatalf("stderr %q", r.stderr)
	}
	w.stop(t)
	// The witness is gone: push is unavailable (exit 3).
	push(3, logPath)
}

func TestAuditWitnessUsage(t *testing.T) {
	dir := t.TempDir()
	wkey := filepath.Join(dir, "w.key")
	mustTH(t, 0, "", "audit", "witness-key", "--name", "w", "--out", wkey)
	mustTH(t, 2, "", "audit", "witness-key", "--name", "bad name", "--out", filepath.Join(dir, "x.key"))
	mustTH(t, 2, "", "audit", "witness", "--key", wkey, "--state", dir) // no --log
	mustTH(t, 2, "", "audit", "witness", "--key", wkey, "--state", dir, "--log", "garbage")
	mustTH(t, 2, "", "audit", "witness", "--key", filepath.Join(dir, "missing"), "--show-key")
	os.Chmod(wkey, 0o644)
	mustTH(t, 2, "", "audit", "witness", "--key", wkey, "--show-key")
	mustTH(t, 2, "", "audit", "push", filepath.Join(dir, "none.jsonl"), "--witness", "http://127.0.0.1:1", "--witness-key", "x")
	logPath := filepath.Join(dir, "a.jsonl")
	writeAuditLog(t, logPath, "", "a", 1)
	mustTH(t, 2, "", "audit", "push", logPath, "--witness", "http://127.0.0.1:1", "--witness-key", "not-a-key")
	mustTH(t, 2, "", "audit", "push", logPath)
}

// requireCosigned checks that the note at path is signed by the log key and cosigned by
// the witness, at size.
func requireCosigned(t *testing.T, path, logVkey, witnessVkey string, size uint64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(logVkey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := witness.NewCosignatureVerifier(witnessVkey)
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := audit.OpenCheckpoint(data, note.VerifierList(lv, wv))
	if err != nil {
		t.Fatal(err)
	}
	if !audit.HasSignature(n, lv) || !audit.HasSignature(n, wv) || c.Size != size {
		t.Fatalf("%s: size %d, sigs %v\n%s", path, c.Size, n.Sigs, data)
	}
}

// TestAuditVerifyWitnessKey: verify --witness-key requires the witness's cosignature, so
// a log cut short and re-signed with its own key (which plain verify accepts) is caught,
// and the witness refuses to cosign it.
func TestAuditVerifyWitnessKey(t *testing.T) {
	dir := t.TempDir()
	wkey := filepath.Join(dir, "witness.key")
	wvkey := mustTH(t, 0, "", "audit", "witness-key", "--name", "witness.example/w1", "--out", wkey).json(t)["vkey"].(string)
	otherKey := filepath.Join(dir, "other.key")
	othervkey := mustTH(t, 0, "", "audit", "witness-key", "--name", "witness.example/w2", "--out", otherKey).json(t)["vkey"].(string)
	logPath := filepath.Join(dir, "audit.jsonl")
	logVkey := writeAuditLog(t, logPath, "", "a", 6)
	w := startWitnessCLI(t, wkey, filepath.Join(dir, "state"), logVkey)

	verify := func(want int, extra ...string) map[string]any {
		t.Helper()
		return mustTH(t, want, "", append([]string{"audit", "verify", logPath}, extra...)...).json(t)
	}
	verify(1, "--witness-key", wvkey) // not cosigned yet
	mustTH(t, 0, "", "audit", "push", logPath, "--witness", w.url, "--witness-key", wvkey)
	out := verify(0, "--witness-key", wvkey)
	ws, _ := out["witnesses"].([]any)
	if len(ws) != 1 || ws[0].(map[string]any)["name"] != "witness.example/w1" {
		t.Fatalf("verify output %v", out)
	}
	verify(0) // the cosignature does not disturb plain verification
	verify(1, "--witness-key", wvkey, "--witness-key", othervkey)
	mustTH(t, 2, "", "audit", "verify", logPath, "--witness-key", "garbage")

	// A tampered cosignature line is refused.
	cpPath := audit.CheckpointPath(logPath)
	good, _ := os.ReadFile(cpPath)
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	last := lines[len(lines)-1]
	i := len(last) - 10
	flipped := last[:i] + string(rune(map[bool]byte{true: 'B', false: 'A'}[last[i] == 'A'])) + last[i+1:]
	lines[len(lines)-1] = flipped
	os.WriteFile(cpPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	verify(1, "--witness-key", wvkey)
	os.WriteFile(cpPath, good, 0o644)

	// Cut off the tail and re-sign with the log key: plain verify cannot tell, the witness
	// can.
	data, _ := os.ReadFile(logPath)
	recs := strings.SplitAfter(string(data), "\n")
	os.WriteFile(logPath, []byte(strings.Join(recs[:3], "")), 0o600)
	os.Remove(cpPath)
	mustTH(t, 0, "", "audit", "checkpoint", logPath)
	verify(0)
	verify(1, "--witness-key", wvkey)
	r := mustTH(t, 1, "", "audit", "push", logPath, "--witness", w.url, "--witness-key", wvkey)
	if !strings.Contains(r.stderr, "larger tree") {
		t.Fatalf("push of the truncated log: %s", r.stderr)
	}
}
