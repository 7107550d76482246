package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// naiveRoot is RFC 6962's MTH, written out from the RFC, independent of x/mod.
func naiveRoot(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := naiveRoot(leaves[:k]), naiveRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// The RFC 6962 test vectors of the Certificate Transparency reference implementation.
func TestTreeVectors(t *testing.T) {
	leaves := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var r compactRange
	var raw [][]byte
	for n := 0; n <= len(leaves); n++ {
		if got := hex.EncodeToString(func() []byte { h := r.root(); return h[:] }()); got != roots[n] {
			t.Errorf("root of %d leaves = %s, want %s", n, got, roots[n])
		}
		if got := naiveRoot(raw); hex.EncodeToString(got[:]) != roots[n] {
			t.Errorf("naive root of %d leaves = %x", n, got)
		}
		if n < len(leaves) {
			b, _ := hex.DecodeString(leaves[n])
			raw = append(raw, b)
			r.append(LeafHash(b))
		}
	}
}

// memLog builds a log of n records in memory (as FileSink writes them).
func memLog(t testing.TB, n int) (*Log, []byte) {
	t.Helper()
	var data []byte
	prev := ""
	for i := range n {
		body, err := encodeJSON(Bound(Event{EventID: fmt.Sprintf("ev-%d", i), EventType: PacketAccepted, Timestamp: time.Unix(int64(i), 0).UTC()}))
		if err != nil {
			t.Fatal(err)
		}
		start := len(data)
		data = appendRecord(data, body, uint64(i+1), prev)
		sum := sha256.Sum256(data[start:])
		prev = hex.EncodeToString(sum[:])
		data = append(data, '\n')
	}
	l, err := parseLog("", data)
	if err != nil {
		t.Fatal(err)
	}
	return l, data
}

func TestLogProofs(t *testing.T) {
	const max = 70
	l, _ := memLog(t, max)
	var r compactRange
	var raw [][]byte
	for size := uint64(0); size <= max; size++ {
		root, err := l.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		if root != r.root() || [32]byte(root) != naiveRoot(raw) {
			t.Fatalf("size %d: roots differ", size)
		}
		if size < max {
			r.append(LeafHash(l.Line(size)))
			raw = append(raw, l.Line(size))
		}
	}
	cps := make([]Checkpoint, max+1)
	for size := range cps {
		cps[size], _ = l.Checkpoint("o", uint64(size))
	}
	for size := uint64(1); size <= max; size++ {
		for i := uint64(0); i < size; i++ {
			p, err := l.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(cps[size], i, l.Line(i), p); err != nil {
				t.Fatalf("record %d in %d: %v", i, size, err)
			}
			// The proof binds the line, the index and the tree.
			if err := VerifyInclusion(cps[size], i, append([]byte("x"), l.Line(i)...), p); !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("edited line accepted at %d/%d", i, size)
			}
			if i+1 < size {
				if err := VerifyInclusion(cps[size], i+1, l.Line(i), p); err == nil {
					t.Fatalf("wrong index accepted at %d/%d", i, size)
				}
			}
			if i+1 < size {
				if err := VerifyInclusion(cps[size-1], i, l.Line(i), p); err == nil {
					t.Fatalf("proof for %d accepted against size %d", size, size-1)
				}
			}
		}
		if _, err := l.InclusionProof(size, size); err == nil {
			t.Fatalf("proof of record %d in a tree of %d", size, size)
		}
	}
	for old := uint64(0); old <= max; old++ {
		for new := old; new <= max; new++ {
			p, err := l.ConsistencyProof(old, new)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(cps[old], cps[new], p); err != nil {
				t.Fatalf("%d -> %d: %v", old, new, err)
			}
			if old > 0 && new > old {
				forged := cps[old]
				forged.Root[0] ^= 1
				if err := VerifyConsistency(forged, cps[new], p); !errors.Is(err, ErrCheckpoint) {
					t.Fatalf("%d -> %d: a forked old tree passed", old, new)
				}
				if err := VerifyConsistency(cps[new], cps[old], p); !errors.Is(err, ErrCheckpoint) {
					t.Fatalf("%d -> %d: backwards passed", old, new)
				}
			}
		}
	}
	other := cps[3]
	other.Origin = "other"
	if err := VerifyConsistency(other, cps[5], nil); !errors.Is(err, ErrCheckpoint) {
		t.Fatal("different origins passed")
	}
	if _, err := l.ConsistencyProof(3, max+1); err == nil {
		t.Fatal("proof beyond the log")
	}
	if _, err := l.Root(max + 1); err == nil {
		t.Fatal("root beyond the log")
	}
}

func TestLogFind(t *testing.T) {
	l, data := memLog(t, 10)
	i, ok := l.Find("ev-7")
	if !ok || i != 7 || l.Record(i).EventID != "ev-7" || l.Record(i).Seq != 8 {
		t.Fatalf("Find: %d %v %+v", i, ok, l.Record(i))
	}
	if _, ok := l.Find("nope"); ok {
		t.Fatal("found a missing id")
	}
	if !strings.HasPrefix(string(data), string(l.Line(0))+"\n") || l.Size() != 10 {
		t.Fatal("lines")
	}
}

func TestReadLogMatchesSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 37 {
		if err := s.Emit(context.Background(), Event{EventID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	want := s.tree.root()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Root(l.Size()); got != want || l.Size() != 37 {
		t.Fatalf("ReadLog root %v (size %d), sink %v", got, l.Size(), want)
	}
	// A broken log names its first broken record.
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(path, []byte(strings.Join(append(lines[:4:4], lines[5:]...), "")), 0o600)
	_, err = ReadLog(path)
	var be *BrokenError
	if !errors.As(err, &be) || be.Record != 5 {
		t.Fatalf("deleted record 5: %v", err)
	}
	if _, err := ReadLog(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing: %v", err)
	}
}
