package audit

import (
	"bufio"
	"context"
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

// benchLogRecords is the size of the log the large-log benchmarks read: 10^6 records.
const benchLogRecords = 1_000_000

// bigLog is a log of benchLogRecords typical decision records with its key and a signed
// checkpoint covering all of them, built once per test binary run and only when a
// benchmark that needs it runs (it takes about 0.5 GB in the temporary directory, removed
// by TestMain).
var bigLog struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigLog.dir != "" {
		os.RemoveAll(bigLog.dir)
	}
	os.Exit(code)
}

// benchEvent is a typical packet_accepted event, as the verifier emits it.
func benchEvent(i int) Event {
	return Event{
		EventID: fmt.Sprintf("evt-%016x", i), EventType: PacketAccepted,
		Timestamp:  time.Date(2026, 4, 1, 12, 0, 0, i*1000, time.UTC),
		ProducerID: "agent:Zr2hM3LHc6bQ0G8y", CorrelationID: fmt.Sprintf("pkt-%016x", i),
		IdempotencyKey: fmt.Sprintf("pkt-%016x:packet_accepted", i),
		Payload: map[string]any{
			"decision": "ACCEPT", "reason": "ok", "packet_id": fmt.Sprintf("pkt-%016x", i),
			"from_agent": "agent:Zr2hM3LHc6bQ0G8y", "to_agent": "agent:9fQ2LkP0aXbB7cYw",
			"task_id": "task-1", "nonce": fmt.Sprintf("%032x", i), "actions": []any{"read_tickets", "search_kb"},
			"risk_level": "read", "packet_digest": fmt.Sprintf("%064x", i), "flags": []any{},
		},
	}
}

func buildBigLog(b *testing.B) string {
	bigLog.once.Do(func() {
		bigLog.dir, bigLog.err = os.MkdirTemp("", "trusthandoff-audit-bench-")
		if bigLog.err != nil {
			return
		}
		bigLog.path = filepath.Join(bigLog.dir, "audit.jsonl")
		bigLog.err = writeBigLog(bigLog.path, benchLogRecords)
	})
	if bigLog.err != nil {
		b.Fatal(bigLog.err)
	}
	return bigLog.path
}

// writeBigLog writes n records and a checkpoint over them, signed by a new log key.
func writeBigLog(path string, n int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var tree compactRange
	var line []byte
	prev := ""
	for i := range n {
		body, err := encodeJSON(Bound(benchEvent(i)))
		if err != nil {
			return err
		}
		line = appendRecord(line[:0], body, uint64(i+1), prev)
		prev = LineHash(line)
		tree.append(LeafHash(line))
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	key, err := LoadOrCreateKey(KeyPath(path), DefaultKeyName())
	if err != nil {
		return err
	}
	msg, err := SignCheckpoint(key, Checkpoint{Origin: key.Name(), Size: uint64(n), Root: tree.root()})
	if err != nil {
		return err
	}
	return os.WriteFile(CheckpointPath(path), msg, 0o600)
}

// verifyLog is what `trusthandoff audit verify LOG` does: read and verify the chain and
// the tree, open the signed checkpoint with the log key and compare its root.
func verifyLog(b *testing.B, path string) *Log {
	l, stored, err := ReadLogAndCheckpoint(path)
	if err != nil {
		b.Fatal(err)
	}
	key, err := LoadKey(KeyPath(path))
	if err != nil {
		b.Fatal(err)
	}
	v, err := Verifier(key)
	if err != nil {
		b.Fatal(err)
	}
	cp, _, err := OpenCheckpoint(stored, note.VerifierList(v))
	if err != nil {
		b.Fatal(err)
	}
	root, err := l.Root(cp.Size)
	if err != nil || root != cp.Root || cp.Size != l.Size() {
		b.Fatalf("checkpoint does not match: %v", err)
	}
	return l
}

// BenchmarkAuditVerify1M is `audit verify` (chain, Merkle tree, signed checkpoint) over a
// log of 10^6 records; one op is the whole log.
func BenchmarkAuditVerify1M(b *testing.B) {
	path := buildBigLog(b)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		verifyLog(b, path)
	}
	b.ReportMetric(float64(benchLogRecords), "records")
}

// BenchmarkAuditProof1M generates (Prove) and verifies (ParseProof + Proof.Verify) the
// inclusion proof of a record in a log of 10^6 records, against the log's signed
// checkpoint, and reports the size of the proof document (JSON, as `audit prove` writes
// it) and of its audit path alone.
func BenchmarkAuditProof1M(b *testing.B) {
	path := buildBigLog(b)
	l := verifyLog(b, path)
	stored, err := ReadCheckpointFile(CheckpointPath(path))
	if err != nil {
		b.Fatal(err)
	}
	key, err := LoadKey(KeyPath(path))
	if err != nil {
		b.Fatal(err)
	}
	v, err := Verifier(key)
	if err != nil {
		b.Fatal(err)
	}
	cp, _, err := OpenCheckpoint(stored, note.VerifierList(v))
	if err != nil {
		b.Fatal(err)
	}
	const i = benchLogRecords / 3 // an inner leaf: a full-length path
	var doc []byte
	b.Run("prove", func(b *testing.B) {
		for b.Loop() {
			p, err := l.Prove(i, stored, cp)
			if err != nil {
				b.Fatal(err)
			}
			if doc, err = json.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(doc)), "proof-bytes")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			p, err := ParseProof(doc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Verify(v); err != nil {
				b.Fatal(err)
			}
		}
		p, _ := ParseProof(doc)
		b.ReportMetric(float64(len(doc)), "proof-bytes")
		b.ReportMetric(float64(32*len(p.Hashes)), "path-bytes")
		b.ReportMetric(float64(len(p.Hashes)), "hashes")
	})
}

// BenchmarkFileSinkEmit is the file sink alone: typical decision events emitted by 1 and
// 64 concurrent callers, each Emit returning once its record is synced (group commit).
func BenchmarkFileSinkEmit(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s, err := OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ev := benchEvent(1)
			ctx := context.Background()
			b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Emit(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
