package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxResponseSize bounds what Push reads of a witness's answer.
const MaxResponseSize = 64 << 10

// DefaultTimeout bounds one Push when the caller's context has no deadline and no
// http.Client is given.
const DefaultTimeout = 30 * time.Second

// PushOption configures Push and Submit.
type PushOption func(*pushConfig)

type pushConfig struct {
	client  *http.Client
	oldSize uint64
}

// WithHTTPClient makes Push use c (its Timeout, Transport, ...).
func WithHTTPClient(c *http.Client) PushOption {
	return func(p *pushConfig) { p.client = c }
}

// WithOldSize makes Submit start from old size n (the size it believes the witness last
// cosigned, e.g. from a previous run) instead of 0, saving a round trip.
func WithOldSize(n uint64) PushOption {
	return func(p *pushConfig) { p.oldSize = n }
}

func newPushConfig(opts []PushOption) *pushConfig {
	p := &pushConfig{}
	for _, o := range opts {
		o(p)
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: DefaultTimeout}
	}
	return p
}

// Push sends one add-checkpoint request to the witness whose submission prefix is url
// (e.g. "http://127.0.0.1:7380"; the request goes to url + "/add-checkpoint"):
// signedCheckpoint with a consistency proof from oldSize. It returns the witness's
// cosignature lines, unverified: pass them to AddCosignatures with the witness's key.
//
// Errors are *Error values; errors.Is tells the outcome: ErrConflict (Error.Size is the
// witness's size; ErrFork and ErrRollback are its two fatal forms), ErrInconsistent,
// ErrForbidden, ErrUnknownLog, ErrMalformed, or ErrUnavailable for a network failure or a
// 5xx answer.
func Push(ctx context.Context, url string, signedCheckpoint []byte, oldSize uint64, proof tlog.TreeProof, opts ...PushOption) ([]byte, error) {
	return push(ctx, newPushConfig(opts), url, signedCheckpoint, oldSize, proof)
}

func push(ctx context.Context, cfg *pushConfig, url string, signedCheckpoint []byte, oldSize uint64, proof tlog.TreeProof) ([]byte, error) {
	if len(proof) > MaxProofLines {
		return nil, requestError(ErrMalformed, "proof of %d hashes", len(proof))
	}
	body := (&AddCheckpointRequest{OldSize: oldSize, Proof: proof, Checkpoint: signedCheckpoint}).Bytes()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Err: ErrMalformed, Detail: "bad witness URL"}
	}
	hreq.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := cfg.client.Do(hreq)
	if err != nil {
		return nil, &Error{Err: ErrUnavailable, Detail: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, &Error{Status: resp.StatusCode, Err: ErrUnavailable, Detail: "reading the response: " + err.Error()}
	}
	if len(data) > MaxResponseSize {
		return nil, &Error{Status: resp.StatusCode, Err: ErrMalformed, Detail: "response too large"}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := checkSigLines(data); err != nil {
			return nil, &Error{Status: resp.StatusCode, Err: ErrMalformed, Detail: err.Error()}
		}
		return data, nil
	case http.StatusConflict:
		return nil, conflict(resp, data, oldSize, signedCheckpoint)
	}
	e := &Error{Status: resp.StatusCode, Detail: firstLine(data)}
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		e.Err = ErrMalformed
	case resp.StatusCode == http.StatusForbidden:
		e.Err = ErrForbidden
	case resp.StatusCode == http.StatusNotFound:
		e.Err = ErrUnknownLog
	case resp.StatusCode == http.StatusUnprocessableEntity:
		e.Err = ErrInconsistent
	default:
		e.Err = ErrUnavailable
	}
	return nil, e
}

// conflict interprets a 409 answer: its text/x.tlog.size body is the witness's size.
func conflict(resp *http.Response, data []byte, oldSize uint64, signedCheckpoint []byte) error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	num, ok := bytes.CutSuffix(data, []byte("\n"))
	size, err := parseSize(num)
	if mt != "text/x.tlog.size" || !ok || err != nil {
		return &Error{Status: resp.StatusCode, Err: ErrMalformed, Detail: "409 without a text/x.tlog.size body"}
	}
	e := &Error{Status: resp.StatusCode, Err: ErrConflict, Size: size}
	var cpSize uint64
	if text, _, err := splitNote(signedCheckpoint); err == nil {
		if c, err := parseCheckpoint(text); err == nil {
			cpSize = c.Size
			if size > c.Size {
				e.Err = ErrRollback
			}
		}
	}
	if size == oldSize && oldSize == cpSize {
		e.Err = ErrFork
	}
	return e
}

// Submit obtains a cosignature for signedCheckpoint from the witness at url, whatever
// size the witness last cosigned: it starts from old size 0 (or WithOldSize) and, when the
// witness answers 409 with its size, retries once with prove(thatSize), the consistency
// proof from that size to the checkpoint's. A witness ahead of the checkpoint
// (ErrRollback) or holding another root at the same size (ErrFork) is final.
func Submit(ctx context.Context, url string, signedCheckpoint []byte, prove func(oldSize uint64) (tlog.TreeProof, error), opts ...PushOption) ([]byte, error) {
	cfg := newPushConfig(opts)
	text, _, err := splitNote(signedCheckpoint)
	if err != nil {
		return nil, &Error{Err: ErrMalformed, Detail: err.Error()}
	}
	c, err := parseCheckpoint(text)
	if err != nil {
		return nil, &Error{Err: ErrMalformed, Detail: err.Error()}
	}
	old := min(cfg.oldSize, c.Size)
	var lastErr error
	for range 3 { // a concurrent submitter can move the witness between two attempts
		var proof tlog.TreeProof
		if old > 0 && old < c.Size {
			if proof, err = prove(old); err != nil {
				return nil, fmt.Errorf("consistency proof from size %d: %w", old, err)
			}
		}
		cosigs, err := push(ctx, cfg, url, signedCheckpoint, old, proof)
		var e *Error
		if err == nil || !errors.As(err, &e) || e.Err != ErrConflict {
			return cosigs, err
		}
		lastErr, old = err, e.Size
	}
	return nil, lastErr
}

// AddCosignatures verifies the cosignature lines a witness returned for signedCheckpoint
// against the witness keys given, and returns signedCheckpoint with every valid one added
// (replacing an older signature by the same key). Lines by other keys are dropped. It
// fails with ErrBadCosignature unless at least one line verifies, or if one by a given key
// is invalid.
func AddCosignatures(signedCheckpoint, cosigLines []byte, witnesses ...note.Verifier) ([]byte, error) {
	text, sigs, err := splitNote(signedCheckpoint)
	if err != nil {
		return nil, err
	}
	if err := checkSigLines(cosigLines); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	msg := append(append(append([]byte{}, text...), '\n'), cosigLines...)
	n, err := note.Open(msg, note.VerifierList(witnesses...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	type key struct {
		name string
		hash uint32
	}
	replaced := map[key]bool{}
	for _, s := range n.Sigs {
		replaced[key{s.Name, s.Hash}] = true
	}
	var b bytes.Buffer
	b.Write(text)
	b.WriteByte('\n')
	for line := range bytes.Lines(sigs) {
		name, hash, ok := sigLineKey(line)
		if ok && replaced[key{name, hash}] {
			continue
		}
		b.Write(line)
	}
	for _, s := range n.Sigs {
		writeSigLine(&b, s.Name, s.Base64)
	}
	return b.Bytes(), nil
}

// checkSigLines checks that data is one or more note signature lines.
func checkSigLines(data []byte) error {
	if len(data) == 0 {
		return errors.New("no signature line")
	}
	for line := range bytes.Lines(data) {
		if _, _, ok := sigLineKey(line); !ok {
			return fmt.Errorf("not a note signature line: %q", truncate(line))
		}
	}
	return nil
}

// sigLineKey returns the key name and key ID of a note signature line
// "— NAME BASE64(keyID || signature)\n".
func sigLineKey(line []byte) (string, uint32, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("— "))
	if !ok {
		return "", 0, false
	}
	rest, ok = bytes.CutSuffix(rest, []byte("\n"))
	if !ok {
		return "", 0, false
	}
	name, b64, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !validName(string(name)) {
		return "", 0, false
	}
	raw, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil || len(raw) < 5 {
		return "", 0, false
	}
	return string(name), binary.BigEndian.Uint32(raw), true
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(truncate(b), []byte("\n"))
	return strings.ToValidUTF8(string(l), "?")
}
