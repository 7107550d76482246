package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/pending"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Decision is the body of a POST /v1/verify answer (200, for ACCEPT and REJECT alike).
type Decision struct {
	Decision     string      `json:"decision"`
	Reason       reason.Code `json:"reason"`
	PacketID     string      `json:"packet_id"`
	Detail       string      `json:"detail"`
	Flags        []string    `json:"flags"`
	SigningRule  string      `json:"signing_rule"`
	DryRun       bool        `json:"dry_run"`
	PacketDigest *string     `json:"packet_digest"` // null until the signature verified
}

// parseBool reads a boolean query parameter ("" is false).
func parseBool(name, v string) (bool, *apiError) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errf(400, CodeBadRequest, fmt.Sprintf("query parameter %s must be a boolean (1, 0, true, false)", name))
	}
	return b, nil
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	if c.admin {
		return errf(403, CodeForbidden, "verify with an agent token (the admin token binds no recipient)")
	}
	var q url.Values // nil when there is no query: most verifications have none
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	dry, aerr := parseBool("dry_run", q.Get("dry_run"))
	if aerr != nil {
		return aerr
	}
	var wait time.Duration
	if ws := q.Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return errf(400, CodeBadRequest, "query parameter wait must be a non-negative duration such as 30s")
		}
		wait = min(d, s.cfg.MaxWait)
	}
	// The body lives in a pooled buffer until the answer is written: the decision's
	// envelope points into it, and nothing keeps the envelope past this request (a held
	// handoff is stored re-encoded).
	bp := bodyBufs.Get().(*[]byte)
	defer putBuf(&bodyBufs, bp)
	data, aerr := s.appendBody((*bp)[:0], w, r)
	*bp = data
	if aerr != nil {
		return aerr
	}
	start := time.Now()
	req := verify.Request{Recipient: c.agent, DryRun: dry}
	d := s.v.VerifyRequest(r.Context(), data, req)
	if d.Reason == reason.HumanReviewRequired && !dry && d.Envelope != nil {
		var err error
		if d, err = s.holdForApproval(r.Context(), d, req, wait); err != nil {
			d = storeFailure(d, err)
		}
	}
	s.metrics.observe(d, time.Since(start))
	return s.writeDecision(w, d)
}

// storeFailure turns a pending-store failure into a store_unavailable decision.
func storeFailure(d *verify.Decision, err error) *verify.Decision {
	re := reason.Wrap(reason.StoreUnavailable, "pending store unavailable", err)
	out := *d
	out.Decision, out.Reason, out.Detail, out.Err, out.Flags = verify.Reject, re.Code, re.Error(), re, nil
	return &out
}

func (s *Server) writeDecision(w http.ResponseWriter, d *verify.Decision) *apiError {
	if d.AuditErr != nil && d.Reason != reason.StoreUnavailable {
		// A rejection stands without its record (an acceptance without one was turned into
		// store_unavailable by the verifier): the operator must know the record has a gap.
		s.metrics.unrecorded.Inc()
		s.log.Warn("rejection not recorded: the audit sink failed", "packet_id", d.PacketID, "reason", string(d.Reason), "error", d.AuditErr.Error())
	}
	switch d.Reason {
	case reason.MalformedEnvelope:
		return errf(400, CodeMalformed, d.Detail)
	case reason.StoreUnavailable:
		s.metrics.storeErrors.Inc()
		s.log.Warn("store unavailable", "packet_id", d.PacketID, "error", d.Detail)
		return errf(503, CodeUnavailable, d.Detail)
	}
	out := toDecision(d)
	if d.Accepted() && !d.DryRun && out.PacketDigest != nil {
		s.remember(d, *out.PacketDigest)
	}
	bp := answerBufs.Get().(*[]byte)
	defer putBuf(&answerBufs, bp)
	*bp = out.appendJSON((*bp)[:0])
	writeJSONBytes(w, 200, *bp)
	return nil
}

// bodyBufs and answerBufs hold the request bodies and answers of POST /v1/verify.
var (
	bodyBufs   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
	answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// putBuf returns a buffer to its pool, dropping huge ones.
func putBuf(p *sync.Pool, bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		p.Put(bp)
	}
}

// appendJSON appends the answer's JSON, byte for byte what json.Marshal writes (the field
// order of Decision), plus a newline, without reflection.
func (d *Decision) appendJSON(b []byte) []byte {
	b = append(b, `{"decision":`...)
	b = appendJSONString(b, d.Decision)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(d.Reason))
	b = append(b, `,"packet_id":`...)
	b = appendJSONString(b, d.PacketID)
	b = append(b, `,"detail":`...)
	b = appendJSONString(b, d.Detail)
	b = append(b, `,"flags":`...)
	if d.Flags == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, f := range d.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
		}
		b = append(b, ']')
	}
	b = append(b, `,"signing_rule":`...)
	b = appendJSONString(b, d.SigningRule)
	b = append(b, `,"dry_run":`...)
	b = strconv.AppendBool(b, d.DryRun)
	b = append(b, `,"packet_digest":`...)
	if d.PacketDigest == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *d.PacketDigest)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as encoding/json writes it: printable ASCII other than the
// characters it escapes is copied, anything else goes through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func toDecision(d *verify.Decision) Decision {
	out := Decision{
		Decision: d.Decision, Reason: d.Reason, PacketID: d.PacketID, Detail: d.Detail,
		Flags: d.Flags, SigningRule: string(d.Rule), DryRun: d.DryRun,
	}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	// The verifier hashes the digest from the bytes its signature check verified
	// (verify.WithPacketDigests): set exactly when the signature verified.
	if d.Rule != "" && d.Digest != ([32]byte{}) {
		h := digestKey(d.Digest)
		out.PacketDigest = &h
	}
	return out
}

// pendingRecord is what the server keeps in the pending store for a held handoff: the
// envelope with every approval collected so far, and when it was first held.
type pendingRecord struct {
	Version     int             `json:"v"`
	RequestedAt time.Time       `json:"requested_at"`
	Envelope    json.RawMessage `json:"envelope"`
}

func encodePending(env *packet.Envelope, at time.Time) ([]byte, error) {
	b, err := env.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return json.Marshal(pendingRecord{Version: 1, RequestedAt: at.UTC(), Envelope: b})
}

func (s *Server) decodePending(data []byte) (*packet.Envelope, time.Time, error) {
	var rec pendingRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Version != 1 {
		return nil, time.Time{}, fmt.Errorf("%w: unreadable pending record", pending.ErrUnavailable)
	}
	env, err := packet.ParseEnvelope(rec.Envelope, canonical.Limits{MaxBytes: pending.MaxEnvelopeLen})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: pending record: %v", pending.ErrUnavailable, err)
	}
	return env, rec.RequestedAt, nil
}

// pendingExpiry is when a held handoff stops being worth holding: its packet's expiry plus
// the verifier's grace.
func (s *Server) pendingExpiry(env *packet.Envelope) time.Time {
	return env.Packet.ExpiresAt.Time().Add(s.v.TimePolicy().Grace)
}

// holdForApproval handles a handoff that needs approval: it re-verifies it with the
// approvals already collected for its digest (the handoff is released once they suffice),
// holds it in the pending store otherwise, and, with a wait, blocks until approvals
// arrive (from this node: at once; from others: within PendingPoll), a decision other
// than human_review_required is reached, the wait ends, or the packet expires.
func (s *Server) holdForApproval(ctx context.Context, d *verify.Decision, req verify.Request, wait time.Duration) (*verify.Decision, error) {
	id := digestKey(d.Digest)
	deadline := s.now().Add(wait)
	if exp := s.pendingExpiry(d.Envelope); exp.Before(deadline) {
		deadline = exp
	}
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(max(deadline.Sub(s.now()), 0))
		defer t.Stop()
		timer = t.C
		s.holdWake(id)
		defer s.releaseWake(id)
	}
	first := true
	for {
		var wake <-chan struct{}
		if wait > 0 {
			wake = s.wakeChan(id)
		}
		next, err := s.retryPending(ctx, id, d, req, first)
		if err != nil {
			return d, err
		}
		first = false
		d = next
		if d.Reason != reason.HumanReviewRequired || wait <= 0 {
			return d, nil
		}
		poll := time.NewTimer(s.cfg.PendingPoll)
		select {
		case <-wake:
		case <-poll.C:
		case <-timer:
			poll.Stop()
			return d, nil
		case <-ctx.Done():
			poll.Stop()
			return d, nil
		case <-s.closing:
			poll.Stop()
			return d, nil
		}
		poll.Stop()
	}
}

// retryPending re-verifies the held copy of the handoff (with the approvals collected for
// it). The first call stores the handoff when nothing is held yet. A decision other than
// human_review_required ends the hold.
func (s *Server) retryPending(ctx context.Context, id string, d *verify.Decision, req verify.Request, first bool) (*verify.Decision, error) {
	data, ok, err := s.store.Get(ctx, id)
	if err != nil {
		return d, err
	}
	if !ok {
		if !first {
			// Released (or expired) elsewhere: verify again as received, which answers
			// replay_detected when another node accepted it.
			req.Envelope = d.Envelope
			return s.v.VerifyRequest(ctx, nil, req), nil
		}
		// A packet already accepted (its nonce spent) is not held again for approval.
		if pub, err := identity.ParsePublicKeyPEM(d.Envelope.Packet.PublicKey); err == nil {
			seen, err := s.store.Seen(ctx, verify.ReplayKey(pub, d.Envelope.Packet.Nonce))
			if err != nil {
				return d, err
			}
			if seen {
				re := reason.New(reason.ReplayDetected, "nonce already used by this sender")
				out := *d
				out.Decision, out.Reason, out.Detail, out.Err, out.Flags = verify.Reject, re.Code, re.Error(), re, nil
				return &out, nil
			}
		}
		rec, err := encodePending(d.Envelope, s.now())
		if err != nil {
			return d, err
		}
		if err := s.store.Put(ctx, id, rec, s.pendingExpiry(d.Envelope)); err != nil {
			return d, err
		}
		return d, nil
	}
	held, _, err := s.decodePending(data)
	if err != nil {
		return d, err
	}
	if len(held.Approvals) == 0 {
		return d, nil
	}
	req.Envelope = held
	next := s.v.VerifyRequest(ctx, nil, req)
	if next.Reason != reason.HumanReviewRequired && next.Reason != reason.StoreUnavailable {
		if err := s.store.Delete(ctx, id); err != nil && !errors.Is(err, pending.ErrInvalid) {
			s.log.Warn("deleting a released pending handoff failed", "packet_digest", id, "error", err.Error())
		}
	}
	return next, nil
}

// A waker is closed when an approval for its digest arrives here; n counts the waiting
// verifications that hold it, so the map forgets digests nobody waits for.
type waker struct {
	ch chan struct{}
	n  int
}

// wakeChan returns the channel closed when an approval for the digest arrives here. The
// first call of a waiting verification registers it; releaseWake unregisters it.
func (s *Server) wakeChan(id string) <-chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	wk, ok := s.wake[id]
	if !ok {
		wk = &waker{ch: make(chan struct{})}
		s.wake[id] = wk
	}
	return wk.ch
}

// holdWake registers one more waiting verification for the digest.
func (s *Server) holdWake(id string) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	wk, ok := s.wake[id]
	if !ok {
		wk = &waker{ch: make(chan struct{})}
		s.wake[id] = wk
	}
	wk.n++
}

// releaseWake unregisters a waiting verification.
func (s *Server) releaseWake(id string) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if wk, ok := s.wake[id]; ok {
		if wk.n--; wk.n <= 0 {
			delete(s.wake, id)
		}
	}
}

// wakeUp wakes every verification waiting here for the digest.
func (s *Server) wakeUp(id string) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if wk, ok := s.wake[id]; ok {
		close(wk.ch)
		wk.ch = make(chan struct{})
	}
}
