package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// requireLitewitnessEnv turns "litewitness cannot be built or run here" from a skip into
// a failure (CI sets it).
const requireLitewitnessEnv = "TRUSTHANDOFF_REQUIRE_LITEWITNESS"

// litewitnessModule is the independent witness implementation the interoperability test
// runs: litewitness from filippo.io/torchwood, a C2SP tlog-witness backed by SQLite that
// signs with an ssh-agent key.
const litewitnessModule = "filippo.io/torchwood"
const litewitnessVersion = "v0.6.1"

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireLitewitnessEnv) != "" {
		t.Fatalf(format+" (and %s is set)", append(args, requireLitewitnessEnv)...)
	}
	t.Skipf(format+" (set %s=1 to fail instead)", append(args, requireLitewitnessEnv)...)
}

// lockedBuffer collects a child's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func run(t *testing.T, ctx context.Context, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startLitewitness builds litewitness and witnessctl, starts a dedicated ssh-agent holding
// a fresh Ed25519 key, registers the log (origin and key) with witnessctl, and starts
// litewitness on a free loopback port. It returns the witness URL and the verifier key
// this package computes for the agent's key, after checking it is the one litewitness
// announces.
func startLitewitness(t *testing.T, name string, logs ...*testLog) (url, vkey string) {
	t.Helper()
	for _, tool := range []string{"go", "ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s not found: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.CommandContext(ctx, "go", "install",
		litewitnessModule+"/cmd/litewitness@"+litewitnessVersion, litewitnessModule+"/cmd/witnessctl@"+litewitnessVersion)
	build.Dir = dir // outside this module: go install pkg@version resolves its own deps
	build.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		skipOrFail(t, "building litewitness %s: %v\n%s", litewitnessVersion, err, out)
	}

	key := filepath.Join(dir, "witness_key")
	run(t, ctx, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "litewitness-test", "-f", key)
	pub := sshEd25519PublicKey(t, key+".pub")
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	agentOut := &lockedBuffer{}
	agent.Stdout, agent.Stderr = agentOut, agentOut
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(t, "ssh-agent socket", func() bool { _, err := os.Stat(sock); return err == nil }, agentOut)
	run(t, ctx, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", key)

	db := filepath.Join(dir, "litewitness.db")
	ctl := filepath.Join(bin, "witnessctl")
	for _, l := range logs {
		run(t, ctx, nil, ctl, "add-log", "-db", db, "-origin", l.origin)
		run(t, ctx, nil, ctl, "add-key", "-db", db, "-origin", l.origin, "-key", l.vkey)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sum := sha256.Sum256(pub)
	lw := exec.Command(filepath.Join(bin, "litewitness"), "-db", db, "-ssh-agent", sock,
		"-name", name, "-key", hex.EncodeToString(sum[:]), "-listen", addr)
	out := &lockedBuffer{}
	lw.Stdout, lw.Stderr = out, out
	if err := lw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Process.Kill(); lw.Wait() })
	waitFor(t, "litewitness listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, out)

	vkey = (&Verifier{name: name, hash: keyHash(name, pub), pub: pub}).String()
	m := regexp.MustCompile(`vkey=(\S+)`).FindStringSubmatch(out.String())
	if m == nil || m[1] != vkey {
		t.Fatalf("litewitness announces %v, this package computes %s\n%s", m, vkey, out)
	}
	return "http://" + addr, vkey
}

// waitFor polls cond until it holds, failing after 30 s (a readiness wait, not a timing
// assertion).
func waitFor(t *testing.T, what string, cond func() bool, out *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sshEd25519PublicKey reads the 32-byte key from an OpenSSH "ssh-ed25519 BASE64 comment"
// public key file (RFC 8709 wire format: string "ssh-ed25519", string key).
func sshEd25519PublicKey(t *testing.T, path string) ed25519.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 || f[0] != "ssh-ed25519" {
		t.Fatalf("%s: not an ssh-ed25519 public key", path)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	for len(blob) >= 4 {
		n := binary.BigEndian.Uint32(blob)
		if uint64(len(blob)-4) < uint64(n) {
			break
		}
		parts = append(parts, blob[4:4+n])
		blob = blob[4+n:]
	}
	if len(parts) != 2 || string(parts[0]) != "ssh-ed25519" || len(parts[1]) != ed25519.PublicKeySize {
		t.Fatalf("%s: malformed ssh-ed25519 key blob", path)
	}
	return ed25519.PublicKey(parts[1])
}

// TestInteropLitewitness runs one scenario against litewitness and against this
// package's Server: both must cosign the honest history with cosignatures this package
// verifies, and refuse the same forks and rollbacks with the same C2SP outcomes.
func TestInteropLitewitness(t *testing.T) {
	lg := newTestLog(t, "example.com/interop-log")
	lg.tree.add(t, "a", 12)
	lwURL, lwVkey := startLitewitness(t, "witness.example/lite", lg)

	ours := fixedCosigner(t, "witness.example/ours", 4, t0)
	srv := newTestServer(t, t.TempDir(), ours, lg.verifier(t))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	for _, w := range []struct{ name, url, vkey string }{
		{"litewitness", lwURL, lwVkey},
		{"ours", hs.URL, ours.VerifierKey()},
	} {
		t.Run(w.name, func(t *testing.T) { interopScenario(t, w.url, w.vkey, lg) })
	}
}

func interopScenario(t *testing.T, url, vkey string, lg *testLog) {
	ctx := context.Background()
	wv, err := NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	proveAt := func(tr *testTree, size int64) func(uint64) (tlog.TreeProof, error) {
		return func(old uint64) (tlog.TreeProof, error) { return tlog.ProveTree(size, int64(old), tr.reader()) }
	}
	// Honest history: 0 → 3 → 3 (again) → 8 → 12.
	for _, size := range []int64{3, 3, 8, 12} {
		cp := lg.checkpoint(t, size)
		lines, err := Submit(ctx, url, cp, proveAt(&lg.tree, size))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		cosigned, err := AddCosignatures(cp, lines, wv)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		n, err := note.Open(cosigned, note.VerifierList(wv, lg.verifier(t)))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("size %d: %v %v", size, err, n)
		}
		if at, ok := CosignedAt(n, wv); !ok || at.IsZero() {
			t.Fatalf("size %d: no cosignature time", size)
		}
	}
	fork := &testLog{origin: lg.origin, signer: lg.signer, vkey: lg.vkey}
	fork.tree.add(t, "b", 16)
	stranger := newTestLog(t, "example.com/stranger")
	stranger.tree.add(t, "a", 2)
	imposter := &testLog{origin: lg.origin, signer: newTestLog(t, lg.origin).signer, tree: lg.tree}
	cases := []struct {
		name string
		cp   []byte
		tree *testTree
		size int64
		want []error // any of
	}{
		// C2SP says 409; litewitness v0.6.1 answers 422 (its proof check fails).
		{"fork at the same size", fork.checkpoint(t, 12), &fork.tree, 12, []error{ErrFork, ErrInconsistent}},
		{"longer fork", fork.checkpoint(t, 16), &fork.tree, 16, []error{ErrInconsistent}},
		{"rollback", lg.checkpoint(t, 5), &lg.tree, 5, []error{ErrRollback}},
		{"untrusted key", imposter.checkpoint(t, 12), &lg.tree, 12, []error{ErrForbidden}},
		// C2SP says 404; litewitness answers 403.
		{"unknown origin", stranger.checkpoint(t, 2), &stranger.tree, 2, []error{ErrUnknownLog, ErrForbidden}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Submit(ctx, url, c.cp, proveAt(c.tree, c.size), WithOldSize(12))
			for _, w := range c.want {
				if errors.Is(err, w) {
					return
				}
			}
			t.Fatalf("Submit = %v, want one of %v", err, c.want)
		})
	}
	// The honest log still goes on from 12.
	lines, err := Submit(ctx, url, lg.checkpoint(t, 12), proveAt(&lg.tree, 12), WithOldSize(12))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddCosignatures(lg.checkpoint(t, 12), lines, wv); err != nil {
		t.Fatal(err)
	}
}
