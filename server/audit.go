package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/witness"
)

// AuditLogConfig is the file audit log behind the audit endpoints (GET
// /v1/audit/checkpoint, /v1/audit/proof, /v1/audit/export) and the witness pushes.
type AuditLogConfig struct {
	// Path is the log file (audit.OpenFile's path); its signed checkpoint is kept beside
	// it (audit.CheckpointPath). Required.
	Path string
	// Key is the log's note verifier key: a checkpoint that does not carry its valid
	// signature is never served or proven against. Required.
	Key note.Verifier
	// AuditorToken, when non-empty, authenticates a read-only auditor: it may call the
	// audit endpoints (as the admin token may) and nothing else.
	AuditorToken string
	// Witnesses cosign the log's checkpoint: the server pushes it to each of them (C2SP
	// tlog-witness) once new records are covered, at most every WitnessInterval.
	Witnesses []Witness
	// WitnessInterval is the least time between two pushes to a witness (default 10 s).
	WitnessInterval time.Duration
	// WitnessClient sends the pushes (default: a client with a 10 s timeout).
	WitnessClient *http.Client
}

// Witness is a witness the server pushes the log's checkpoint to.
type Witness struct {
	URL string            // its submission prefix (the request goes to URL/add-checkpoint)
	Key *witness.Verifier // its cosignature/v1 verifier key
}

// DefaultWitnessInterval is AuditLogConfig.WitnessInterval's default.
const DefaultWitnessInterval = 10 * time.Second

// initAudit checks the audit log settings and prepares the witness pushers.
func (s *Server) initAudit() error {
	a := s.cfg.AuditLog
	if a == nil {
		return nil
	}
	if a.Path == "" || a.Key == nil {
		return errors.New("server: Config.AuditLog needs Path and Key")
	}
	if a.AuditorToken != "" {
		s.auditorHash = []byte(HashToken(a.AuditorToken))
		if string(s.auditorHash) == string(s.adminHash) {
			return errors.New("server: the auditor token must differ from the admin token")
		}
	}
	if a.WitnessInterval <= 0 {
		a.WitnessInterval = DefaultWitnessInterval
	}
	if a.WitnessClient == nil {
		a.WitnessClient = &http.Client{Timeout: 10 * time.Second}
	}
	seen := map[string]bool{}
	for _, w := range a.Witnesses {
		if w.URL == "" || w.Key == nil {
			return errors.New("server: a witness needs a URL and a Key")
		}
		if seen[w.Key.Name()] {
			return fmt.Errorf("server: two witnesses named %s", w.Key.Name())
		}
		seen[w.Key.Name()] = true
		s.witnesses = append(s.witnesses, &witnessState{Witness: w})
	}
	if len(s.witnesses) > 0 {
		s.witnessMetrics()
	}
	return nil
}

// auditLog returns the audit log settings, or the 404 of a server that keeps no file log.
func (s *Server) auditLog() (*AuditLogConfig, *apiError) {
	if s.cfg.AuditLog == nil {
		return nil, errf(404, CodeNotFound, "this server keeps no file audit log (serve --audit-log FILE)")
	}
	return s.cfg.AuditLog, nil
}

// auditUnavailable answers a log that cannot be read.
func (s *Server) auditUnavailable(err error) *apiError {
	s.metrics.storeErrors.Inc()
	s.log.Warn("audit log unavailable", "error", trim(err.Error()))
	if errors.Is(err, audit.ErrBroken) || errors.Is(err, audit.ErrCheckpoint) {
		return errf(503, CodeUnavailable, "the audit log does not verify: "+trim(err.Error()))
	}
	return errf(503, CodeUnavailable, "the audit log cannot be read")
}

// storedCheckpoint reads the log's checkpoint file (with the witnesses' cosignatures) and
// checks the log's signature on it.
func (s *Server) storedCheckpoint(a *AuditLogConfig, signed []byte) (audit.Checkpoint, *apiError) {
	if signed == nil {
		return audit.Checkpoint{}, errf(404, CodeNotFound, "the audit log has no checkpoint yet")
	}
	cp, _, err := audit.OpenCheckpoint(signed, note.VerifierList(a.Key))
	if err != nil {
		return audit.Checkpoint{}, s.auditUnavailable(fmt.Errorf("%w: the stored checkpoint: %v", audit.ErrCheckpoint, err))
	}
	return cp, nil
}

// handleAuditCheckpoint is GET /v1/audit/checkpoint: the log's latest signed checkpoint
// note as stored beside it, cosignatures included.
func (s *Server) handleAuditCheckpoint(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	a, aerr := s.auditLog()
	if aerr != nil {
		return aerr
	}
	signed, err := audit.ReadCheckpointFile(audit.CheckpointPath(a.Path))
	if errors.Is(err, fs.ErrNotExist) {
		signed, err = nil, nil
	}
	if err != nil {
		return s.auditUnavailable(err)
	}
	cp, aerr := s.storedCheckpoint(a, signed)
	if aerr != nil {
		return aerr
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Trusthandoff-Tree-Size", strconv.FormatUint(cp.Size, 10))
	w.WriteHeader(200)
	_, _ = w.Write(signed)
	return nil
}

// handleAuditProof is GET /v1/audit/proof?event_id=ID: the inclusion proof (the document
// `trusthandoff audit prove` prints) of the first record with that event id against the
// stored checkpoint.
func (s *Server) handleAuditProof(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	a, aerr := s.auditLog()
	if aerr != nil {
		return aerr
	}
	id := r.URL.Query().Get("event_id")
	if id == "" || len(id) > 256 {
		return errf(400, CodeBadRequest, "query parameter event_id is required (at most 256 bytes)")
	}
	l, signed, err := audit.ReadLogAndCheckpoint(a.Path)
	if err != nil {
		return s.auditUnavailable(err)
	}
	cp, aerr := s.storedCheckpoint(a, signed)
	if aerr != nil {
		return aerr
	}
	i, ok := l.Find(id)
	if !ok {
		return errf(404, CodeNotFound, "no record has that event_id")
	}
	if i >= cp.Size {
		return errf(409, CodeConflict, fmt.Sprintf("the record is not covered by the checkpoint yet (it is refreshed at least every %v): retry", audit.CheckpointInterval))
	}
	p, err := l.Prove(i, signed, cp)
	if err != nil {
		return s.auditUnavailable(err)
	}
	writeJSON(w, 200, p)
	return nil
}

// exportFlushEvery is how many records the export writes between flushes.
const exportFlushEvery = 256

// handleAuditExport is GET /v1/audit/export[?since=SEQ]: the log's records (every one with
// seq > SEQ) as they are in the file, one JSON object a line, verified first (a broken
// log answers 503, never a partial export of a broken chain).
func (s *Server) handleAuditExport(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	a, aerr := s.auditLog()
	if aerr != nil {
		return aerr
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errf(400, CodeBadRequest, "query parameter since must be a record seq (a non-negative integer)")
		}
		since = n
	}
	l, err := audit.ReadLog(a.Path)
	if err != nil {
		return s.auditUnavailable(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Trusthandoff-Tree-Size", strconv.FormatUint(l.Size(), 10))
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	// seq is the record's 1-based position: records with seq > since start at index since.
	for i := since; i < l.Size(); i++ {
		line := l.Line(i)
		if _, err := w.Write(line); err != nil {
			return nil // the client went away
		}
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return nil
		}
		if (i+1)%exportFlushEvery == 0 {
			_ = rc.Flush()
			if r.Context().Err() != nil {
				return nil
			}
		}
	}
	return nil
}
