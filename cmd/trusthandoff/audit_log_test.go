package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// tlogFixture writes a log of n records with the library (as verify --audit-log does) in a
// fresh directory, with its key and checkpoint beside it.
func tlogFixture(t *testing.T, n int) (path string, lines []string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "audit.jsonl")
	appendEvents(t, path, 0, n)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.SplitAfter(string(data), "\n")
	return path, lines[:len(lines)-1]
}

func appendEvents(t *testing.T, path string, from, to int) {
	t.Helper()
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		ev := audit.Event{EventID: fmt.Sprintf("ev-%d", i), EventType: audit.PacketAccepted, Timestamp: time.Unix(int64(i), 0).UTC(), Payload: map[string]any{"i": i}}
		if err := s.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// rechain rewrites lines (records without their chain fields changed) recomputing each
// prev_hash, as an attacker who knows the format would.
func rechain(t *testing.T, lines []string) string {
	t.Helper()
	var out strings.Builder
	prev := ""
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		body := l[:strings.Index(l, `,"seq":`)]
		line := fmt.Sprintf(`%s,"seq":%d,"prev_hash":"%s"}`, body, i+1, prev)
		sum := sha256.Sum256([]byte(line))
		prev = hex.EncodeToString(sum[:])
		out.WriteString(line + "\n")
	}
	return out.String()
}

// Rule: audit verify detects every kind of tampering through the built binary and names
// the first broken record (exit 1); an intact log exits 0.
func TestAuditVerifyTampering(t *testing.T) {
	const n = 10
	path, lines := tlogFixture(t, n)
	got := mustTH(t, 0, "", "audit", "verify", path).json(t)
	if got["intact"] != true || got["records"] != float64(n) || got["uncovered"] != float64(0) {
		t.Fatalf("intact log: %v", got)
	}
	cp := got["checkpoint"].(map[string]any)
	if cp["size"] != float64(n) || !strings.HasPrefix(cp["origin"].(string), "trusthandoff/audit/") {
		t.Fatalf("checkpoint: %v", cp)
	}
	orig, _ := os.ReadFile(path)
	origCP, _ := os.ReadFile(audit.CheckpointPath(path))
	join := func(ls ...string) string { return strings.Join(ls, "") }
	edit := func(l string) string { return strings.Replace(l, `"i":`, `"i":1`, 1) }
	without := func(i int) []string { return append(append([]string{}, lines[:i]...), lines[i+1:]...) }
	trimmed := func(ls []string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = strings.TrimSuffix(l, "\n")
		}
		return out
	}
	swapped := append([]string{}, lines...)
	swapped[4], swapped[5] = swapped[5], swapped[4]
	inserted := append(append(append([]string{}, lines[:3]...), lines[2]), lines[3:]...)
	rewrittenFrom3 := append(trimmed(lines[:2]), edit(strings.TrimSuffix(lines[2], "\n")))
	rewrittenFrom3 = append(rewrittenFrom3, trimmed(lines[3:])...)
	cases := []struct {
		name   string
		log    string
		first  float64 // 0: not named
		errHas string
	}{
		{"newest edited", join(append(lines[:n-1:n-1], edit(lines[n-1]))...), n, "record 10, the newest, was edited"},
		{"middle edited", join(append(append(lines[:3:3], edit(lines[3])), lines[4:]...)...), 4, "record 4 edited"},
		{"first edited", join(append([]string{edit(lines[0])}, lines[1:]...)...), 1, "record 1 edited"},
		{"middle deleted", join(without(5)...), 6, "record 6 has seq 7"},
		{"first deleted", join(without(0)...), 1, "record 1 has seq 2"},
		{"record inserted", join(inserted...), 4, "record 4 has seq 3"},
		{"reordered", join(swapped...), 5, "record 5 has seq 6"},
		{"newest removed", join(lines[:n-1]...), n, "records 10-10 were removed"},
		{"three removed", join(lines[:n-3]...), n - 2, "records 8-10 were removed"},
		{"all removed", "", 1, "records 1-10 were removed"},
		{"newest cut short", string(orig[:len(orig)-7]), n, "record 10 is incomplete"},
		{"chain recomputed after an edit", rechain(t, rewrittenFrom3), n, "do not match the signed checkpoint"},
		{"chain recomputed, record dropped", rechain(t, append(trimmed(lines[:4]), trimmed(lines[5:])...)), 10, "records 10-10 were removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(path, []byte(c.log), 0o600)
			r := mustTH(t, 1, "", "audit", "verify", path)
			got := r.json(t)
			if got["intact"] != false || !strings.Contains(got["error"].(string), c.errHas) {
				t.Fatalf("got %v, want an error with %q", got, c.errHas)
			}
			if f, _ := got["first_broken"].(float64); f != c.first {
				t.Fatalf("first_broken %v, want %v (%v)", got["first_broken"], c.first, got)
			}
		})
	}
	os.WriteFile(path, orig, 0o600)

	// The checkpoint itself: missing, edited, or signed by another key.
	for name, cpContent := range map[string]string{
		"checkpoint edited":        strings.Replace(string(origCP), "\n10\n", "\n9\n", 1),
		"checkpoint of other key":  otherKeyCheckpoint(t, string(origCP)),
		"checkpoint not a note":    "hello\n",
		"checkpoint signature cut": strings.SplitAfter(string(origCP), "\n\n")[0],
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(audit.CheckpointPath(path), []byte(cpContent), 0o644)
			got := mustTH(t, 1, "", "audit", "verify", path).json(t)
			if got["intact"] != false {
				t.Fatalf("%v", got)
			}
		})
	}
	os.Remove(audit.CheckpointPath(path))
	if got := mustTH(t, 1, "", "audit", "verify", path).json(t); !strings.Contains(got["error"].(string), "is missing") {
		t.Fatalf("missing checkpoint: %v", got)
	}
	// --no-checkpoint checks the chain alone: a cut-off tail passes it.
	os.WriteFile(path, []byte(join(lines[:5]...)), 0o600)
	if got := mustTH(t, 0, "", "audit", "verify", "--no-checkpoint", path).json(t); got["records"] != float64(5) {
		t.Fatalf("--no-checkpoint: %v", got)
	}
	// With an explicit checkpoint the cut is caught again.
	cpFile := filepath.Join(t.TempDir(), "saved.checkpoint")
	os.WriteFile(cpFile, origCP, 0o644)
	mustTH(t, 1, "", "audit", "verify", "--checkpoint", cpFile, path)
	mustTH(t, 2, "", "audit", "verify", "--checkpoint", cpFile+".missing", path)
}

// otherKeyCheckpoint re-signs the checkpoint's body with a fresh key of the same name.
func otherKeyCheckpoint(t *testing.T, signed string) string {
	t.Helper()
	body := strings.SplitAfter(signed, "\n\n")[0]
	c, err := audit.ParseCheckpoint([]byte(strings.TrimSuffix(body, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.LoadOrCreateKey(filepath.Join(t.TempDir(), "other.key"), c.Origin)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := audit.SignCheckpoint(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

// Rule: an old checkpoint stays valid for a grown log (the new records are "uncovered"
// until the next refresh); the log key can be given as a verifier key.
func TestAuditCheckpointAndKeys(t *testing.T) {
	path, _ := tlogFixture(t, 3)
	r := mustTH(t, 0, "", "audit", "checkpoint", "--show-key", path).json(t)
	vkey, _ := r["log_key"].(string)
	if r["size"] != float64(3) || !strings.HasPrefix(vkey, r["origin"].(string)+"+") || !strings.Contains(r["checkpoint"].(string), "\n3\n") {
		t.Fatalf("audit checkpoint: %v", r)
	}
	stored, _ := os.ReadFile(audit.CheckpointPath(path))
	if string(stored) != r["checkpoint"] {
		t.Fatal("the printed checkpoint is not the stored one")
	}
	keyData, _ := os.ReadFile(audit.KeyPath(path))
	if strings.Contains(r["checkpoint"].(string)+vkey, strings.TrimSpace(string(keyData))) {
		t.Fatal("the private key was printed")
	}
	old := filepath.Join(t.TempDir(), "old.checkpoint")
	os.WriteFile(old, stored, 0o644)
	appendEvents(t, path, 3, 8)

	// Without LOG.key, --log-key is needed (as a key or a file holding it).
	moved := audit.KeyPath(path) + ".moved"
	os.Rename(audit.KeyPath(path), moved)
	mustTH(t, 2, "", "audit", "verify", path)
	got := mustTH(t, 0, "", "audit", "verify", "--log-key", vkey, "--checkpoint", old, path).json(t)
	if got["uncovered"] != float64(5) || got["records"] != float64(8) {
		t.Fatalf("old checkpoint: %v", got)
	}
	vkeyFile := filepath.Join(t.TempDir(), "log.vkey")
	os.WriteFile(vkeyFile, []byte(vkey+"\n"), 0o644)
	mustTH(t, 0, "", "audit", "verify", "--log-key", vkeyFile, path)
	mustTH(t, 2, "", "audit", "verify", "--log-key", "nonsense", path)
	// Another log's key does not verify this one's checkpoint.
	other, _ := tlogFixture(t, 1)
	otherKey := mustTH(t, 0, "", "audit", "checkpoint", "--show-key", other).json(t)["log_key"].(string)
	mustTH(t, 1, "", "audit", "verify", "--log-key", otherKey, path)
	os.Rename(moved, audit.KeyPath(path))

	// audit checkpoint refuses to bless a tampered log.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"i":7`, `"i":70`, 1)), 0o600)
	mustTH(t, 1, "", "audit", "checkpoint", path)
	os.WriteFile(path, data, 0o600)
	mustTH(t, 0, "", "audit", "checkpoint", path)
}

// Rule: audit prove prints a proof that --verify accepts offline, and that fails when any
// part of it is changed.
func TestAuditProve(t *testing.T) {
	path, _ := tlogFixture(t, 13)
	vkey := mustTH(t, 0, "", "audit", "checkpoint", "--show-key", path).json(t)["log_key"].(string)
	r := mustTH(t, 0, "", "audit", "prove", path, "ev-6")
	var p audit.Proof
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatal(err)
	}
	if p.Index != 6 || p.EventID != "ev-6" || len(p.Hashes) == 0 || p.Version != audit.ProofVersion {
		t.Fatalf("proof: %+v", p)
	}
	dir := t.TempDir()
	proofFile := filepath.Join(dir, "proof.json")
	os.WriteFile(proofFile, []byte(r.stdout), 0o644)
	got := mustTH(t, 0, "", "audit", "prove", "--verify", proofFile, "--log-key", vkey).json(t)
	if got["valid"] != true || got["index"] != float64(6) {
		t.Fatalf("verify: %v", got)
	}
	mustTH(t, 0, r.stdout, "audit", "prove", "--verify", "-", "--log-key", vkey)
	mustTH(t, 2, "", "audit", "prove", "--verify", proofFile) // no key

	tamper := map[string]func(p *audit.Proof){
		"record edited":     func(p *audit.Proof) { p.Record = strings.Replace(p.Record, `"i":6`, `"i":7`, 1) },
		"other event named": func(p *audit.Proof) { p.EventID = "ev-7" },
		"index moved":       func(p *audit.Proof) { p.Index = 7 },
		"hash changed":      func(p *audit.Proof) { p.Hashes[0][0] ^= 1 },
		"hash dropped":      func(p *audit.Proof) { p.Hashes = p.Hashes[1:] },
		"checkpoint edited": func(p *audit.Proof) { p.Checkpoint = strings.Replace(p.Checkpoint, "\n13\n", "\n14\n", 1) },
		"version":           func(p *audit.Proof) { p.Version = "v0" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			var q audit.Proof
			json.Unmarshal([]byte(r.stdout), &q)
			f(&q)
			b, _ := json.Marshal(q)
			got := mustTH(t, 1, string(b), "audit", "prove", "--verify", "-", "--log-key", vkey).json(t)
			if got["valid"] != false || got["error"] == "" {
				t.Fatalf("%v", got)
			}
		})
	}
	mustTH(t, 1, `{"version":"`+audit.ProofVersion+`","extra":1}`, "audit", "prove", "--verify", "-", "--log-key", vkey)
	mustTH(t, 1, "not json", "audit", "prove", "--verify", "-", "--log-key", vkey)
	mustTH(t, 1, "", "audit", "prove", path, "no-such-event")
	mustTH(t, 2, "", "audit", "prove", path) // one argument without --verify

	// Records appended after the checkpoint are not covered until the next one.
	s, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cpBefore, _ := os.ReadFile(audit.CheckpointPath(path))
	s.Emit(context.Background(), audit.Event{EventID: "late"})
	s.Close()
	saved := filepath.Join(dir, "before.checkpoint")
	os.WriteFile(saved, cpBefore, 0o644)
	mustTH(t, 1, "", "audit", "prove", "--checkpoint", saved, path, "late")
	mustTH(t, 0, "", "audit", "prove", path, "late")
}

// Rule: audit consistency proves that an old checkpoint's records are still the log's
// first ones, and fails for a rewritten history.
func TestAuditConsistency(t *testing.T) {
	path, _ := tlogFixture(t, 5)
	dir := t.TempDir()
	old := filepath.Join(dir, "old.checkpoint")
	data, _ := os.ReadFile(audit.CheckpointPath(path))
	os.WriteFile(old, data, 0o644)
	appendEvents(t, path, 5, 21)
	got := mustTH(t, 0, "", "audit", "consistency", path, old).json(t)
	if got["consistent"] != true || got["old"].(map[string]any)["size"] != float64(5) || got["new"].(map[string]any)["size"] != float64(21) {
		t.Fatalf("%v", got)
	}
	if p, _ := got["proof"].([]any); len(p) == 0 {
		t.Fatalf("no proof: %v", got)
	}
	cur := filepath.Join(dir, "cur.checkpoint")
	data, _ = os.ReadFile(audit.CheckpointPath(path))
	os.WriteFile(cur, data, 0o644)
	mustTH(t, 0, "", "audit", "consistency", path, old, cur)
	mustTH(t, 1, "", "audit", "consistency", path, cur, old) // backwards

	// A history rewritten (by someone holding the key) is not consistent with the old one.
	lines, _ := os.ReadFile(path)
	forged := strings.Replace(string(lines), `"i":2`, `"i":200`, 1)
	forkDir := t.TempDir()
	fork := filepath.Join(forkDir, "audit.jsonl")
	os.WriteFile(fork, []byte(rechain(t, strings.Split(strings.TrimSuffix(forged, "\n"), "\n"))), 0o600)
	keyData, _ := os.ReadFile(audit.KeyPath(path))
	os.WriteFile(audit.KeyPath(fork), keyData, 0o600)
	r := mustTH(t, 0, "", "audit", "checkpoint", fork).json(t)
	if r["size"] != float64(21) {
		t.Fatalf("%v", r)
	}
	got = mustTH(t, 1, "", "audit", "consistency", fork, old).json(t)
	if got["consistent"] != false || !strings.Contains(got["error"].(string), "not a prefix") {
		t.Fatalf("%v", got)
	}
	mustTH(t, 2, "", "audit", "consistency", path, filepath.Join(dir, "missing"))
}

// Rule: verify --audit-key signs the log's checkpoints with the given key, created 0600.
func TestVerifyAuditKeyFlag(t *testing.T) {
	w := newWorld(t)
	log := filepath.Join(w.dir, "audit.jsonl")
	key := filepath.Join(w.dir, "keys", "audit.notekey")
	os.Mkdir(filepath.Dir(key), 0o700)
	w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", log, "--audit-key", key)
	w.verify(t, 0, sign(t, w, "alice", "bob"), "--audit-log", log, "--audit-key", key)
	if _, err := os.Stat(audit.KeyPath(log)); err == nil {
		t.Fatal("LOG.key created although --audit-key was given")
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", fi, err)
	}
	mustTH(t, 2, "", "audit", "verify", log) // no LOG.key: the verifier must be given
	vkey := mustTH(t, 0, "", "audit", "checkpoint", "--key", key, "--show-key", log).json(t)["log_key"].(string)
	got := mustTH(t, 0, "", "audit", "verify", "--log-key", vkey, log).json(t)
	if got["records"] != float64(2) || got["checkpoint"].(map[string]any)["size"] != float64(2) {
		t.Fatalf("%v", got)
	}
	os.Chmod(key, 0o644)
	r := mustTH(t, 2, "", append([]string{"verify", "--registry", w.reg, "--state", w.state, "--audit-log", log, "--audit-key", key}, sign(t, w, "alice", "bob"))...)
	if !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// TestRevokeRecordsInAuditLog: revoke --audit-log appends one revocation event naming the
// operator; the log stays verifiable and a report reads it; a log that cannot be opened
// stops the command before it revokes anything.
func TestRevokeRecordsInAuditLog(t *testing.T) {
	w := newWorld(t)
	logPath := filepath.Join(w.dir, "audit.jsonl")
	mustTH(t, 0, "", "revoke", "--state", w.state, "--agent-id", w.ids["carol"], "--audit-log", logPath)
	mustTH(t, 0, "", "revoke", "--state", w.state, "--capability", "0123456789abcdef0123456789abcdef", "--audit-log", logPath)
	mustTH(t, 0, "", "audit", "verify", logPath)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(lines), data)
	}
	var r struct {
		EventType     string         `json:"event_type"`
		CorrelationID string         `json:"correlation_id"`
		Payload       map[string]any `json:"payload"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.EventType != "revocation" || r.CorrelationID != w.ids["carol"] || r.Payload["kind"] != "agent" || r.Payload["by"] != "operator" {
		t.Fatalf("record %s", lines[0])
	}
	mustTH(t, 0, "", "audit", "report", logPath, "--format", "json")

	// A broken log: nothing is revoked.
	if err := os.WriteFile(logPath, append(data, []byte("{\"junk\":1}\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	res := th(t, "", "revoke", "--state", w.state, "--agent-id", w.ids["bob"], "--audit-log", logPath)
	if res.code != 2 {
		t.Fatalf("revoke with a broken log: %d %s", res.code, res.stderr)
	}
	env := mustTH(t, 0, "", "sign", "--key", w.key("bob"), "--to", w.ids["alice"], "--intent", "x", "--actions", "read").stdout
	wantReason(t, th(t, env, "verify", "--registry", w.reg, "--state", w.state, "-").json(t), "ACCEPT", "ok")
}

// TestRegistryChangesRecorded: registry add / rotate / revoke --audit-log append one
// registry_change event each; an add whose event cannot be appended (a broken log) is not
// made.
func TestRegistryChangesRecorded(t *testing.T) {
	w := newWorld(t)
	logPath := filepath.Join(w.dir, "audit.jsonl")
	mustTH(t, 0, "", "keygen", "--out", w.key("dave"))
	dave := mustTH(t, 0, "", "registry", "add", "--registry", w.reg, "--public-key", w.key("dave")+".pub", "--role", "approver", "--audit-log", logPath).json(t)["agent_id"].(string)
	mustTH(t, 0, "", "keygen", "--out", w.key("dave2"))
	mustTH(t, 0, "", "registry", "rotate", "--registry", w.reg, "--agent-id", dave, "--public-key", w.key("dave2")+".pub", "--audit-log", logPath)
	mustTH(t, 0, "", "registry", "revoke", "--registry", w.reg, "--agent-id", dave, "--audit-log", logPath)
	mustTH(t, 0, "", "audit", "verify", logPath)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			EventType string         `json:"event_type"`
			Payload   map[string]any `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.EventType != "registry_change" || r.Payload["agent_id"] != dave || r.Payload["by"] != "operator" {
			t.Fatalf("record %s", line)
		}
		if _, hasKey := r.Payload["key_sha256"]; hasKey == (r.Payload["op"] == "revoke") {
			t.Fatalf("key_sha256 in %s", line)
		}
		ops = append(ops, r.Payload["op"].(string))
	}
	if strings.Join(ops, ",") != "add,rotate,revoke" {
		t.Fatalf("ops %v", ops)
	}

	// A broken log: the add is refused and the registry unchanged.
	if err := os.WriteFile(logPath, append(data, []byte("{\"junk\":1}\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(w.reg)
	mustTH(t, 0, "", "keygen", "--out", w.key("erin"))
	if r := th(t, "", "registry", "add", "--registry", w.reg, "--public-key", w.key("erin")+".pub", "--audit-log", logPath); r.code == 0 {
		t.Fatalf("registry add with a broken log succeeded: %s", r.stdout)
	}
	if after, _ := os.ReadFile(w.reg); string(after) != string(before) {
		t.Fatal("the registry changed although its change could not be recorded")
	}
}
