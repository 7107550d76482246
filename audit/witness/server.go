package witness

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Config configures a Server.
type Config struct {
	// Cosigner is the witness key: a *Cosigner, or any note.Signer producing
	// cosignature/v1 signatures.
	Cosigner note.Signer
	// Logs are the logs the witness cosigns: each verifier's Name is a log's origin
	// line; an origin may have several keys (a checkpoint needs a valid signature by one).
	Logs []note.Verifier
	// StateDir holds the latest cosigned checkpoint of every log (created 0700 if
	// missing). One Server at a time may use it: NewServer takes a lock on it.
	StateDir string
	// Logger receives one record per request (origin, sizes, outcome); nil discards.
	Logger *slog.Logger
}

// Server is a C2SP tlog-witness: an http.Handler for POST /add-checkpoint that cosigns a
// checkpoint of a known log only when it is consistent with the latest one it cosigned
// for that log, persisted before the answer.
type Server struct {
	signer note.Signer
	logs   map[string]note.Verifiers
	log    *slog.Logger
	mux    *http.ServeMux

	mu sync.Mutex // serialises check-and-persist of the state
	st *store
}

// NewServer opens (or creates) the state directory and returns a witness. Close it to
// release the state directory.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Cosigner == nil {
		return nil, errors.New("witness: Config.Cosigner is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("witness: Config.StateDir is required")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: Config.Logs names no log")
	}
	byOrigin := map[string][]note.Verifier{}
	for _, v := range cfg.Logs {
		if v == nil {
			return nil, errors.New("witness: nil log verifier")
		}
		byOrigin[v.Name()] = append(byOrigin[v.Name()], v)
	}
	logs := make(map[string]note.Verifiers, len(byOrigin))
	for o, vs := range byOrigin {
		logs[o] = note.VerifierList(vs...)
	}
	st, err := openStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Server{signer: cfg.Cosigner, logs: logs, log: lg, st: st, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /add-checkpoint", s.serveAddCheckpoint)
	return s, nil
}

// Close releases the state directory.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.close()
}

// ServeHTTP serves POST /add-checkpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveAddCheckpoint(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestSize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the request failed", http.StatusBadRequest)
		return
	}
	cosigs, err := s.AddCheckpoint(body)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Status: http.StatusInternalServerError, Err: err}
		}
		if e.Status == http.StatusConflict {
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "%d\n", e.Size)
			return
		}
		msg := e.Error()
		if e.Status == http.StatusInternalServerError {
			msg = "witness state unavailable" // details stay in the server's log
		}
		http.Error(w, msg, e.Status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(cosigs) // a failure means the client went away; the state is saved
}

// AddCheckpoint handles one add-checkpoint request body and returns the cosignature
// line(s) to answer with. Errors are *Error values wrapping ErrMalformed, ErrUnknownLog,
// ErrForbidden, ErrConflict (ErrFork), ErrInconsistent or ErrState.
func (s *Server) AddCheckpoint(body []byte) (cosigs []byte, err error) {
	req, err := ParseAddCheckpoint(body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Err: ErrMalformed, Detail: err.Error()}
	}
	origin, _, _ := bytes.Cut(req.Checkpoint, []byte("\n"))
	lg := s.log.With("origin", string(truncate(origin)), "old_size", req.OldSize)
	defer func() {
		if err != nil {
			lg.Info("add-checkpoint refused", "status", statusOf(err), "error", err.Error())
		}
	}()
	keys, ok := s.logs[string(origin)]
	if !ok {
		return nil, requestError(ErrUnknownLog, "%q", truncate(origin))
	}
	n, err := note.Open(req.Checkpoint, keys)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, requestError(ErrForbidden, "no valid signature by a key of %q", truncate(origin))
		}
		return nil, requestError(ErrMalformed, "checkpoint is not a signed note")
	}
	c, err := parseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Err: ErrMalformed, Detail: err.Error()}
	}
	if req.OldSize > c.Size {
		return nil, requestError(ErrMalformed, "old size %d is larger than the checkpoint size %d", req.OldSize, c.Size)
	}
	if req.OldSize == 0 && len(req.Proof) > 0 {
		return nil, requestError(ErrMalformed, "a proof from size 0 must be empty")
	}
	lg = lg.With("size", c.Size)

	s.mu.Lock()
	defer s.mu.Unlock()
	latest, err := s.st.latest(c.Origin)
	if err != nil {
		lg.Error("witness state unreadable", "error", err.Error())
		return nil, &Error{Status: http.StatusInternalServerError, Err: err}
	}
	if latest.Size != req.OldSize {
		return nil, &Error{Status: http.StatusConflict, Err: ErrConflict, Size: latest.Size}
	}
	switch {
	case req.OldSize == 0:
		// Nothing cosigned yet (or only the empty tree): every tree extends it.
	case req.OldSize == c.Size:
		if c.Root != latest.Root || len(req.Proof) > 0 {
			s.st.keepEvidence(c.Origin, body)
			return nil, &Error{Status: http.StatusConflict, Err: ErrFork, Size: latest.Size}
		}
	default:
		if err := tlog.CheckTree(req.Proof, int64(c.Size), c.Root, int64(latest.Size), latest.Root); err != nil {
			s.st.keepEvidence(c.Origin, body)
			return nil, requestError(ErrInconsistent, "from size %d to %d", latest.Size, c.Size)
		}
	}
	if err := s.st.save(c.Origin, verifiedNote(n)); err != nil {
		lg.Error("witness state not saved", "error", err.Error())
		return nil, &Error{Status: http.StatusInternalServerError, Err: err}
	}
	line, err := signatureLine(s.signer, n.Text)
	if err != nil {
		lg.Error("cosigning failed", "error", err.Error())
		return nil, &Error{Status: http.StatusInternalServerError, Err: err}
	}
	lg.Info("add-checkpoint cosigned")
	return line, nil
}

// verifiedNote re-encodes n with only its verified signatures (what the state keeps).
func verifiedNote(n *note.Note) []byte {
	var b bytes.Buffer
	b.WriteString(n.Text)
	b.WriteByte('\n')
	for _, sig := range n.Sigs {
		writeSigLine(&b, sig.Name, sig.Base64)
	}
	return b.Bytes()
}

// signatureLine returns the note signature line of s over text.
func signatureLine(s note.Signer, text string) ([]byte, error) {
	sig, err := s.Sign([]byte(text))
	if err != nil {
		return nil, err
	}
	raw := binary.BigEndian.AppendUint32(nil, s.KeyHash())
	var b bytes.Buffer
	writeSigLine(&b, s.Name(), base64.StdEncoding.EncodeToString(append(raw, sig...)))
	return b.Bytes(), nil
}

func writeSigLine(b *bytes.Buffer, name, b64 string) {
	b.WriteString("— ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(b64)
	b.WriteByte('\n')
}

// Latest returns the size and root hash of the latest checkpoint the witness cosigned
// for origin (size 0 when none).
func (s *Server) Latest(origin string) (size uint64, root tlog.Hash, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.st.latest(origin)
	return c.Size, c.Root, err
}
