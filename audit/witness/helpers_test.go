package witness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testTree is an in-memory RFC 6962 tree (golang.org/x/mod/sumdb/tlog stored hashes).
type testTree struct {
	hashes []tlog.Hash
	n      int64
}

func (t *testTree) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(t.hashes)) {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = t.hashes[x]
		}
		return out, nil
	})
}

// add appends records named prefix-0, prefix-1, ... (so two trees with different prefixes
// are two histories).
func (t *testTree) add(tb testing.TB, prefix string, count int) {
	tb.Helper()
	for range count {
		h, err := tlog.StoredHashes(t.n, fmt.Appendf(nil, "%s-%d", prefix, t.n), t.reader())
		if err != nil {
			tb.Fatal(err)
		}
		t.hashes = append(t.hashes, h...)
		t.n++
	}
}

func (t *testTree) root(tb testing.TB, size int64) tlog.Hash {
	tb.Helper()
	if size == 0 {
		return sha256.Sum256(nil)
	}
	h, err := tlog.TreeHash(size, t.reader())
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func (t *testTree) proof(tb testing.TB, old, size int64) tlog.TreeProof {
	tb.Helper()
	p, err := tlog.ProveTree(size, old, t.reader())
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// testLog is a log key plus its tree.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	tree   testTree
}

func newTestLog(tb testing.TB, origin string) *testLog {
	tb.Helper()
	skey, vkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	return &testLog{origin: origin, signer: s, vkey: vkey}
}

func (l *testLog) verifier(tb testing.TB) note.Verifier {
	tb.Helper()
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func checkpointText(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// checkpoint returns the log's signed checkpoint at size (of its current tree).
func (l *testLog) checkpoint(tb testing.TB, size int64) []byte {
	tb.Helper()
	return signNote(tb, checkpointText(l.origin, size, l.tree.root(tb, size)), l.signer)
}

func signNote(tb testing.TB, text string, s ...note.Signer) []byte {
	tb.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, s...)
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// fixedCosigner returns a cosigner from a fixed seed with a fixed clock.
func fixedCosigner(tb testing.TB, name string, seed byte, at time.Time) *Cosigner {
	tb.Helper()
	key := ed25519.NewKeyFromSeed(bytesOf(seed, ed25519.SeedSize))
	c, err := NewCosigner(name, key, WithClock(func() time.Time { return at }))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func newTestServer(tb testing.TB, dir string, c note.Signer, logs ...note.Verifier) *Server {
	tb.Helper()
	s, err := NewServer(Config{Cosigner: c, Logs: logs, StateDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func request(old int64, proof tlog.TreeProof, cp []byte) []byte {
	return (&AddCheckpointRequest{OldSize: uint64(old), Proof: proof, Checkpoint: cp}).Bytes()
}
