package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
)

// witnessState is what the server knows of one witness.
type witnessState struct {
	Witness
	mu       sync.Mutex // one push at a time per witness
	cosigned uint64     // the tree size it last cosigned (through this server)
	pushed   bool       // a push succeeded at least once
}

// witnessMetrics are the witness collectors (registered only when witnesses are set).
type witnessMetrics struct {
	pushes *prometheus.CounterVec
	size   *prometheus.GaugeVec
}

func (s *Server) witnessMetrics() *witnessMetrics {
	s.witnessOnce.Do(func() {
		m := &witnessMetrics{
			pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "trusthandoff_witness_pushes_total",
				Help: "Pushes of the audit log's checkpoint to a witness, by witness name and result (ok, error).",
			}, []string{"witness", "result"}),
			size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "trusthandoff_witness_cosigned_size",
				Help: "Tree size of the latest checkpoint each witness cosigned through this server.",
			}, []string{"witness"}),
		}
		s.metrics.reg.MustRegister(m.pushes, m.size)
		for _, w := range s.witnesses {
			m.pushes.WithLabelValues(w.Key.Name(), "ok")
			m.pushes.WithLabelValues(w.Key.Name(), "error")
		}
		s.wmetrics = m
	})
	return s.wmetrics
}

// PushWitnesses pushes the audit log's checkpoint to every witness whose last cosigned
// size is behind it, one witness after the other, and returns the failures joined (nil
// when every witness is up to date). Failures are also logged and counted
// (trusthandoff_witness_pushes_total{result="error"}); they never affect verification.
// A server without witnesses does nothing.
func (s *Server) PushWitnesses(ctx context.Context) error {
	a := s.cfg.AuditLog
	if a == nil || len(s.witnesses) == 0 {
		return nil
	}
	m := s.witnessMetrics()
	signed, err := audit.ReadCheckpointFile(audit.CheckpointPath(a.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing written yet
	}
	if err != nil {
		s.log.Warn("witness push: reading the checkpoint", "error", trim(err.Error()))
		return err
	}
	cp, _, err := audit.OpenCheckpoint(signed, note.VerifierList(a.Key))
	if err != nil {
		s.log.Warn("witness push: the stored checkpoint does not verify", "error", trim(err.Error()))
		return err
	}
	var errs []error
	for _, w := range s.witnesses {
		if err := s.pushWitness(ctx, w, cp.Size, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) pushWitness(ctx context.Context, w *witnessState, size uint64, m *witnessMetrics) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pushed && w.cosigned >= size {
		return nil
	}
	name := w.Key.Name()
	opts := []witness.PushOption{witness.WithHTTPClient(s.cfg.AuditLog.WitnessClient)}
	if w.pushed {
		opts = append(opts, witness.WithOldSize(w.cosigned))
	}
	res, err := witness.PushLog(ctx, w.URL, w.Key, s.cfg.AuditLog.Path, "", opts...)
	if err != nil {
		m.pushes.WithLabelValues(name, "error").Inc()
		// The error names the outcome and the witness's status; it carries no key or token
		// (net/http redacts a password in the URL).
		s.log.Warn("witness push failed", "witness", name, "error", trim(err.Error()))
		return fmt.Errorf("witness %s: %w", name, err)
	}
	m.pushes.WithLabelValues(name, "ok").Inc()
	m.size.WithLabelValues(name).Set(float64(res.Checkpoint.Size))
	w.cosigned, w.pushed = res.Checkpoint.Size, true
	s.log.Info("witness cosigned", "witness", name, "size", res.Checkpoint.Size, "old_size", res.OldSize)
	return nil
}

// RunWitnesses pushes the audit log's checkpoint to the witnesses (PushWitnesses) every
// AuditLogConfig.WitnessInterval until ctx ends; a witness that is up to date is not
// contacted, so pushes follow the arrival of records, at most once an interval. It
// returns at once when the server has no witnesses.
func (s *Server) RunWitnesses(ctx context.Context) {
	a := s.cfg.AuditLog
	if a == nil || len(s.witnesses) == 0 {
		return
	}
	s.witnessMetrics()
	t := time.NewTicker(a.WitnessInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(a.WitnessInterval, 30*time.Second))
		_ = s.PushWitnesses(pctx) // logged and counted
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}
