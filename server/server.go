package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Store is the state the server needs: nonces (with a read-only side for dry runs),
// revocations, and handoffs pending approval. store/pebble and store/redis provide all
// three in one value.
type Store interface {
	verify.ReplayStore
	Seen(ctx context.Context, key []byte) (bool, error)
	revocation.Store
	pending.Store
}

// Config configures a Server. Registry and Store are required.
type Config struct {
	// Registry holds the agents and their keys. Registry admin requests change it in
	// place and, when RegistryPath is set, persist every change to that file.
	Registry     *registry.Registry
	RegistryPath string
	// VerifierFactory builds the verifier of each key of a registry the server loads
	// (after a change of RegistryPath); nil: crypto/ed25519 (fastverify.New is faster
	// with the same decisions).
	VerifierFactory identity.VerifierFactory
	// Store holds nonces, revocations and pending handoffs.
	Store Store
	// VerifyOptions configure the pipeline (policy, strict mode, skew, …). The server adds
	// the revocation store, the envelope size limit, the audit sink and the clock.
	VerifyOptions []verify.Option
	// Tokens authenticate agents; AdminToken, when non-empty, authenticates the operator.
	Tokens     Tokens
	AdminToken string
	// OpenVerify allows POST /v1/verify without a token (binding no recipient).
	OpenVerify bool
	// Signers are the keys the server signs with, by agent id.
	Signers map[string]identity.Signer
	// MaxBodyBytes bounds a request body (default canonical.DefaultMaxBytes, which is
	// also the largest envelope the pipeline accepts).
	MaxBodyBytes int
	// MaxWait bounds ?wait= on POST /v1/verify (default 5 minutes).
	MaxWait time.Duration
	// PendingPoll is how often a waiting verification re-reads the pending store for
	// approvals submitted through other nodes (default 250 ms). Approvals submitted
	// through this node wake it at once.
	PendingPoll time.Duration
	// Audit receives an event per decision; a failing sink rejects with store_unavailable.
	// A sink that also implements Readier is asked by GET /readyz.
	Audit audit.Sink
	// AuditLog, when not nil, is the file audit log (the one Audit appends to) that the
	// audit endpoints read and the server pushes to witnesses; see AuditLogConfig.
	AuditLog *AuditLogConfig
	// Logger receives one JSON-friendly record per request (default: discard). Tokens,
	// bodies and keys are never logged.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the HTTP API. Create it with New; it is an http.Handler.
type Server struct {
	cfg         Config
	v           *verify.Verifier
	receipts    *receipt.Verifier
	reg         *liveRegistry
	store       Store
	tokens      Tokens
	adminHash   []byte
	auditorHash []byte
	witnesses   []*witnessState
	witnessOnce sync.Once
	wmetrics    *witnessMetrics
	signers     map[string]identity.Signer
	log         *slog.Logger
	now         func() time.Time
	maxBody     int
	mux         *http.ServeMux
	metrics     *metrics
	accepted    acceptedSet
	regMu       sync.Mutex // serialises registry mutations (file and memory)
	pendMu      sync.Mutex // serialises this node's updates of held handoffs

	closing   chan struct{}
	closeOnce sync.Once

	wakeMu sync.Mutex
	wake   map[string]*waker // packet digest → closed when an approval for it arrives here
}

// New returns a server over cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Registry == nil {
		return nil, errors.New("server: Config.Registry is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = canonical.DefaultMaxBytes
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.PendingPoll <= 0 {
		cfg.PendingPoll = 250 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	opts := append([]verify.Option{}, cfg.VerifyOptions...)
	opts = append(opts,
		verify.WithRevocations(cfg.Store),
		verify.WithLimits(canonical.Limits{MaxBytes: cfg.MaxBodyBytes}),
		verify.WithClock(cfg.Now),
		verify.WithPacketDigests(), // every answer names its packet's digest
	)
	if cfg.Audit != nil {
		opts = append(opts, verify.WithAudit(cfg.Audit, producerID))
	}
	live := &liveRegistry{}
	live.p.Store(cfg.Registry)
	v, err := verify.New(live, cfg.Store, opts...)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg: cfg, v: v, reg: live, store: cfg.Store, tokens: cfg.Tokens,
		signers: cfg.Signers, log: cfg.Logger, now: cfg.Now, maxBody: cfg.MaxBodyBytes,
		closing: make(chan struct{}), wake: map[string]*waker{},
		metrics: newMetrics(), accepted: acceptedSet{m: map[string]acceptedHandoff{}},
	}
	if s.receipts, err = s.newReceiptVerifier(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.initAudit(); err != nil {
		return nil, err
	}
	if cfg.AdminToken != "" {
		s.adminHash = []byte(HashToken(cfg.AdminToken))
	}
	if s.tokens == nil {
		s.tokens = Tokens{}
	}
	for hash, id := range s.tokens {
		if err := checkTokenHash(hash); err != nil {
			return nil, err
		}
		if id == "" {
			return nil, fmt.Errorf("%w: empty agent id", ErrTokens)
		}
	}
	s.routes()
	return s, nil
}

// Verifier returns the pipeline the server verifies with.
func (s *Server) Verifier() *verify.Verifier { return s.v }

// Metrics returns the Prometheus registry behind GET /metrics.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics.reg }

// Close ends waiting verifications (they answer with their current decision) and event
// streams, so that an http.Server's Shutdown drains quickly. It does not close the store.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := recorders.Get().(*statusRecorder)
	rec.ResponseWriter, rec.status = w, 200
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, errf(500, CodeInternal, "internal error"))
			}
		}
		// Built only when it will be written: the sidecar usually logs at warn or above.
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("remote", r.RemoteAddr))
		}
		*rec = statusRecorder{}
		recorders.Put(rec)
	}()
	s.mux.ServeHTTP(rec, r)
}

// recorders recycles the statusRecorder of every request.
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Flush supports server-sent events.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// handler is an endpoint: it returns an error, or writes its own response.
type handler func(w http.ResponseWriter, r *http.Request, c caller) *apiError

// auth levels of an endpoint.
type access int

const (
	anyone    access = iota // no token needed (probes)
	verifying               // a token, or none with OpenVerify
	agent                   // an agent token or the admin token
	admin                   // the admin token
	auditing                // the admin token or the auditor token
)

func (s *Server) handle(pattern string, lvl access, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, aerr := s.authenticate(r)
		if aerr == nil {
			aerr = s.authorize(c, lvl)
		}
		if aerr == nil {
			aerr = h(w, r, c)
		}
		if aerr != nil {
			writeError(w, aerr)
		}
	})
}

func (s *Server) authorize(c caller, lvl access) *apiError {
	if c.auditor && lvl != anyone && lvl != auditing {
		return errf(403, CodeForbidden, "the auditor token reads only the audit endpoints")
	}
	switch lvl {
	case auditing:
		if !c.admin && !c.auditor {
			if !c.authenticated() {
				return errf(401, CodeUnauthorized, "the admin or auditor token is required")
			}
			return errf(403, CodeForbidden, "this endpoint needs the admin or auditor token")
		}
	case verifying:
		if !c.authenticated() && !s.cfg.OpenVerify {
			return errf(401, CodeUnauthorized, "a bearer token is required")
		}
	case agent:
		if !c.authenticated() {
			return errf(401, CodeUnauthorized, "a bearer token is required")
		}
	case admin:
		if !c.authenticated() {
			return errf(401, CodeUnauthorized, "the admin token is required")
		}
		if !c.admin {
			return errf(403, CodeForbidden, "this endpoint needs the admin token")
		}
	}
	return nil
}

// readBody reads a JSON request body: Content-Type application/json, at most maxBody
// bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	return s.appendBody(nil, w, r)
}

// appendBody is readBody appending to dst (a pooled buffer): one read into a buffer sized
// by Content-Length when the client sent it, no doubling copies.
func (s *Server) appendBody(dst []byte, w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	ct := r.Header.Get("Content-Type")
	if ct != "application/json" { // the usual header needs no parsing
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errf(415, CodeUnsupportedMedia, "the body must be Content-Type application/json")
		}
	}
	if r.ContentLength > int64(s.maxBody) {
		return nil, errf(413, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.maxBody))
	}
	if r.ContentLength > 0 {
		dst = slices.Grow(dst, int(r.ContentLength)+1) // +1: room to see EOF without growing
	}
	data, err := readAll(dst, http.MaxBytesReader(w, r.Body, int64(s.maxBody)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errf(413, CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.maxBody))
		}
		return nil, errf(400, CodeBadRequest, "reading the body failed")
	}
	return data, nil
}

// readAll is io.ReadAll appending to dst.
func readAll(dst []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := rd.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// digestKey names a packet digest in maps and stores (hex, as approvals spell it).
func digestKey(d [32]byte) string { return hex.EncodeToString(d[:]) }
