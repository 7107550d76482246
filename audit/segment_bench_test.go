package audit

import (
	"bufio"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// segmentedBigLog is buildBigLog's log split into sealed segments of at most 64 MiB (at
// record boundaries, as rotation would have left it), with the same key and checkpoint,
// in a directory beside it.
var segmentedBigLog struct {
	once sync.Once
	path string
	err  error
}

const benchSegmentBytes = 64 << 20

func buildSegmentedBigLog(b *testing.B) string {
	src := buildBigLog(b)
	segmentedBigLog.once.Do(func() {
		dir := filepath.Join(filepath.Dir(src), "segmented")
		if err := os.Mkdir(dir, 0o700); err != nil {
			segmentedBigLog.err = err
			return
		}
		path := filepath.Join(dir, "audit.jsonl")
		segmentedBigLog.path, segmentedBigLog.err = path, splitLog(src, path, benchSegmentBytes)
	})
	if segmentedBigLog.err != nil {
		b.Fatal(segmentedBigLog.err)
	}
	return segmentedBigLog.path
}

func splitLog(src, dst string, limit int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 1<<20)
	seg := 0
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	var off int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 {
			break
		}
		if off > 0 && off+int64(len(line)) > limit {
			if err := w.Flush(); err != nil {
				return err
			}
			out.Close()
			seg++
			if err := os.Rename(dst, SegmentPath(dst, seg)); err != nil {
				return err
			}
			if out, err = os.Create(dst); err != nil {
				return err
			}
			w.Reset(out)
			off = 0
		}
		w.Write(line)
		off += int64(len(line))
		if err != nil {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	out.Close()
	for _, ext := range []string{".key", ".checkpoint"} {
		data, err := os.ReadFile(src + ext)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst+ext, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkAuditVerify1MSegmented is BenchmarkAuditVerify1M over the same 10^6 records
// rotated into 64 MiB segments: what reading a segmented log costs over one file.
func BenchmarkAuditVerify1MSegmented(b *testing.B) {
	path := buildSegmentedBigLog(b)
	nums, err := segmentNumbers(path)
	if err != nil || len(nums) == 0 {
		b.Fatalf("segments %v, %v", nums, err)
	}
	for b.Loop() {
		verifyLog(b, path)
	}
	b.ReportMetric(float64(len(nums)+1), "files")
}
