package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// benchRecords is the size of the logs the large benchmarks read: 10^6 records.
const benchRecords = 1_000_000

var bigLog struct {
	sync.Mutex
	dir string
}

// millionLog writes, once per test binary run, a log of benchRecords typical records with
// its key and signed checkpoint under one temporary directory (removed by cleanupBench),
// as a FileSink would have written it, but without a fsync per record. rotate > 0 splits
// it into segments of at most rotate bytes.
func millionLog(b *testing.B, rotate int64) string {
	bigLog.Lock()
	defer bigLog.Unlock()
	if bigLog.dir == "" {
		dir, err := os.MkdirTemp("", "audit-bench-")
		if err != nil {
			b.Fatal(err)
		}
		bigLog.dir = dir
	}
	path := filepath.Join(bigLog.dir, fmt.Sprintf("rot%d", rotate), "audit.jsonl")
	if _, err := os.Stat(CheckpointPath(path)); err == nil {
		return path
	}
	os.MkdirAll(filepath.Dir(path), 0o700)
	key, err := LoadOrCreateKey(KeyPath(path), DefaultKeyName())
	if err != nil {
		b.Fatal(err)
	}
	var tree compactRange
	var prev string
	var off int64
	seg := 0
	open := func(p string) (*os.File, *bufio.Writer) {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		return f, bufio.NewWriterSize(f, 1<<20)
	}
	f, w := open(path)
	var line []byte
	for i := range benchRecords {
		ev := Bound(Event{EventID: fmt.Sprintf("ev-%07d", i), EventType: PacketAccepted, Timestamp: time.Unix(1700000000+int64(i), 0).UTC(),
			ProducerID: "verifier-1", Payload: map[string]any{"sender": "alice", "receiver": "bob", "nonce": fmt.Sprintf("%032x", i)}})
		body, err := encodeJSON(ev)
		if err != nil {
			b.Fatal(err)
		}
		line = appendRecord(line[:0], body, uint64(i+1), prev)
		if rotate > 0 && off > 0 && off+int64(len(line))+1 > rotate {
			w.Flush()
			f.Close()
			seg++
			if err := os.Rename(path, SegmentPath(path, seg)); err != nil {
				b.Fatal(err)
			}
			f, w = open(path)
			off = 0
		}
		sum := sha256.Sum256(line)
		prev = hex.EncodeToString(sum[:])
		tree.append(LeafHash(line))
		w.Write(line)
		w.WriteByte('\n')
		off += int64(len(line)) + 1
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cp, err := SignCheckpoint(key, Checkpoint{Origin: key.Name(), Size: benchRecords, Root: tree.root()})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(CheckpointPath(path), cp, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigLog.dir != "" {
		os.RemoveAll(bigLog.dir)
	}
	os.Exit(code)
}

// verifyLog is what `audit verify` does: read and verify the chain and tree of every
// record, then check the signed checkpoint against them.
func verifyLog(b *testing.B, path string, v note.Verifier) {
	l, cp, err := ReadLogAndCheckpoint(path)
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := OpenCheckpoint(cp, note.VerifierList(v))
	if err != nil {
		b.Fatal(err)
	}
	if root, err := l.Root(c.Size); err != nil || root != c.Root || l.Size() != benchRecords {
		b.Fatal("checkpoint does not match")
	}
}

func logVerifier(b *testing.B, path string) note.Verifier {
	key, err := LoadKey(KeyPath(path))
	if err != nil {
		b.Fatal(err)
	}
	v, err := Verifier(key)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkAuditVerify1M is `audit verify` (ReadLogAndCheckpoint and the checkpoint check)
// of a log of 10^6 records, in one file and rotated into 64 MiB segments.
func BenchmarkAuditVerify1M(b *testing.B) {
	for _, rotate := range []int64{0, 64 << 20} {
		b.Run(fmt.Sprintf("rotate=%d", rotate), func(b *testing.B) {
			path := millionLog(b, rotate)
			v := logVerifier(b, path)
			var size int64
			nums, _ := segmentNumbers(path)
			for _, k := range nums {
				fi, _ := os.Stat(SegmentPath(path, k))
				size += fi.Size()
			}
			fi, _ := os.Stat(path)
			size += fi.Size()
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				verifyLog(b, path, v)
			}
			b.ReportMetric(float64(len(nums)), "segments")
		})
	}
}

// BenchmarkVerifyFile1M is the chain check alone (VerifyFile, streaming) of 10^6 records.
func BenchmarkVerifyFile1M(b *testing.B) {
	path := millionLog(b, 0)
	b.ResetTimer()
	for b.Loop() {
		if n, _, err := VerifyFile(path); err != nil || n != benchRecords {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkProof1M is inclusion proofs at 10^6 records: generating one (from the log read
// in memory) and verifying one offline, with the size of the proof file `audit prove`
// prints.
func BenchmarkProof1M(b *testing.B) {
	path := millionLog(b, 0)
	v := logVerifier(b, path)
	l, cp, err := ReadLogAndCheckpoint(path)
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := OpenCheckpoint(cp, note.VerifierList(v))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("prove", func(b *testing.B) {
		i := uint64(0)
		for b.Loop() {
			if _, err := l.Prove(i%benchRecords, cp, c); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	p, err := l.Prove(benchRecords/2, cp, c)
	if err != nil {
		b.Fatal(err)
	}
	doc, err := json.MarshalIndent(p, "", "  ") // as audit prove prints it
	if err != nil {
		b.Fatal(err)
	}
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			q, err := ParseProof(doc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := q.Verify(v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(doc)+1), "proof-bytes")
		b.ReportMetric(float64(len(p.Hashes)), "hashes")
	})
}

// BenchmarkEmit is FileSink.Emit with 64 concurrent callers (group commit): events/s and
// records per fsync.
func BenchmarkEmit(b *testing.B) {
	s, err := OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ev := Event{EventID: "ev", EventType: PacketAccepted, Timestamp: time.Unix(1700000000, 0).UTC(), ProducerID: "verifier-1",
		Payload: map[string]any{"sender": "alice", "receiver": "bob", "nonce": fmt.Sprintf("%032x", 1)}}
	b.SetParallelism(max(1, 64/max(1, runtimeGOMAXPROCS())))
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Emit(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func runtimeGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }
