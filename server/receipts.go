package server

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// maxReceiptDependencies bounds the dependencies one POST /v1/receipts/verify carries.
const maxReceiptDependencies = receipt.MaxDependsOn

// newReceiptVerifier builds the receipt verifier over the server's registry, stores, audit
// sink and clock, with the pipeline's skew and grace, so that a receipt is judged against
// the validity the verifying node enforced.
func (s *Server) newReceiptVerifier() (*receipt.Verifier, error) {
	tp := s.v.TimePolicy()
	opts := []receipt.Option{
		receipt.WithReplay(s.store), receipt.WithRevocations(s.store), receipt.WithClock(s.now),
		receipt.WithSkew(min(tp.Skew, packet.MaxSkew)), receipt.WithGrace(min(tp.Grace, packet.MaxGrace)),
	}
	if s.cfg.Audit != nil {
		opts = append(opts, receipt.WithAudit(s.cfg.Audit, producerID))
	}
	return receipt.NewVerifier(s.reg, opts...)
}

// bytesField is one of the ways a request gives bytes: text (UTF-8 as is) or base64.
type bytesField struct {
	Text   *string
	Base64 *string
}

// value returns the bytes and whether any were given.
func (b bytesField) value(name string) ([]byte, bool, *apiError) {
	switch {
	case b.Text != nil && b.Base64 != nil:
		return nil, false, errf(400, CodeInvalid, fmt.Sprintf("give %s or %s_base64, not both", name, name))
	case b.Text != nil:
		return []byte(*b.Text), true, nil
	case b.Base64 != nil:
		v, err := base64.StdEncoding.DecodeString(*b.Base64)
		if err != nil {
			return nil, false, errf(400, CodeInvalid, name+"_base64 is not standard base64")
		}
		return v, true, nil
	}
	return nil, false, nil
}

// receiptSignRequest is the body of POST /v1/receipts.
type receiptSignRequest struct {
	Envelope      json.RawMessage `json:"envelope"`
	Status        string          `json:"status"`
	Outcome       *string         `json:"outcome"`
	OutcomeBase64 *string         `json:"outcome_base64"`
	OutcomeHash   *string         `json:"outcome_hash"`
	Reason        *string         `json:"reason"`
	ReasonBase64  *string         `json:"reason_base64"`
	ReasonHash    *string         `json:"reason_hash"`
	StartedAt     *string         `json:"started_at"`
	FinishedAt    *string         `json:"finished_at"`
	DependsOn     []string        `json:"depends_on"`
}

// parseHash reads "sha256:" + 64 lowercase hex digits (prefix "sha256:") or 64 lowercase
// hex digits (prefix "").
func parseHash(name, v, prefix string) ([32]byte, *apiError) {
	var h [32]byte
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok || len(rest) != 64 || strings.ToLower(rest) != rest {
		return h, errf(400, CodeInvalid, fmt.Sprintf("%s must be %q and 64 lowercase hex digits", name, prefix))
	}
	if _, err := hex.Decode(h[:], []byte(rest)); err != nil {
		return h, errf(400, CodeInvalid, fmt.Sprintf("%s must be %q and 64 lowercase hex digits", name, prefix))
	}
	return h, nil
}

func parseTime(name string, v *string, def time.Time) (time.Time, *apiError) {
	if v == nil {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return time.Time{}, errf(400, CodeInvalid, name+" must be an RFC 3339 datetime")
	}
	return t, nil
}

// parseEnvelope parses the envelope member of a request.
func (s *Server) parseEnvelope(name string, raw json.RawMessage) (*packet.Envelope, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errf(400, CodeInvalid, name+" is required")
	}
	env, err := packet.ParseEnvelope(raw, canonical.Limits{MaxBytes: s.maxBody})
	if err != nil {
		return nil, errf(400, CodeMalformed, name+": "+trim(err.Error()))
	}
	return env, nil
}

// handleSignReceipt is POST /v1/receipts: the server signs, as the calling agent and with
// the key it holds for it, the receipt of executing a handoff addressed to that agent.
func (s *Server) handleSignReceipt(w http.ResponseWriter, r *http.Request, c caller) *apiError {
	id, aerr := s.signerOf(c)
	if aerr != nil {
		return aerr
	}
	var req receiptSignRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	env, aerr := s.parseEnvelope("envelope", req.Envelope)
	if aerr != nil {
		return aerr
	}
	pkt := env.Packet
	if pkt.ToAgent != id {
		// Recipient binding: an agent reports only on handoffs addressed to it.
		return errf(403, CodeForbidden, "the packet is addressed to another agent: the caller signs receipts only for packets addressed to it")
	}
	pub, err := identity.ParsePublicKeyPEM(pkt.PublicKey)
	if err != nil {
		return errf(400, CodeMalformed, "envelope: the packet's public_key is not an Ed25519 key")
	}
	rule, err := pkt.VerifySignature(pub)
	if err != nil {
		return errf(400, CodeInvalid, "envelope: the packet's signature does not verify under its public_key")
	}
	p := receipt.Params{Status: receipt.StatusOK}
	if req.Status != "" {
		p.Status = receipt.Status(req.Status)
		if !p.Status.Valid() {
			return errf(400, CodeInvalid, "status must be one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT")
		}
	}
	outcome, hasOutcome, aerr := bytesField{req.Outcome, req.OutcomeBase64}.value("outcome")
	if aerr != nil {
		return aerr
	}
	var outcomeHash *[32]byte
	if req.OutcomeHash != nil {
		if hasOutcome {
			return errf(400, CodeInvalid, "give outcome, outcome_base64 or outcome_hash, not several")
		}
		h, aerr := parseHash("outcome_hash", *req.OutcomeHash, receipt.HashPrefix)
		if aerr != nil {
			return aerr
		}
		outcomeHash = &h
	} else if !hasOutcome {
		return errf(400, CodeInvalid, "outcome is required (outcome, outcome_base64 or outcome_hash)")
	}
	p.Outcome = outcome
	why, hasReason, aerr := bytesField{req.Reason, req.ReasonBase64}.value("reason")
	if aerr != nil {
		return aerr
	}
	var reasonHash *[32]byte
	if req.ReasonHash != nil {
		if hasReason {
			return errf(400, CodeInvalid, "give reason, reason_base64 or reason_hash, not several")
		}
		h, aerr := parseHash("reason_hash", *req.ReasonHash, receipt.HashPrefix)
		if aerr != nil {
			return aerr
		}
		reasonHash = &h
	} else if hasReason {
		p.Reason = why
		if p.Reason == nil {
			p.Reason = []byte{}
		}
	}
	now := s.now()
	if p.StartedAt, aerr = parseTime("started_at", req.StartedAt, now); aerr != nil {
		return aerr
	}
	if p.FinishedAt, aerr = parseTime("finished_at", req.FinishedAt, now); aerr != nil {
		return aerr
	}
	if p.FinishedAt.Before(p.StartedAt) {
		return errf(400, CodeInvalid, "finished_at is before started_at")
	}
	if len(req.DependsOn) > receipt.MaxDependsOn {
		return errf(400, CodeInvalid, fmt.Sprintf("depends_on names more than %d receipts", receipt.MaxDependsOn))
	}
	for _, d := range req.DependsOn {
		h, aerr := parseHash("depends_on", d, "")
		if aerr != nil {
			return aerr
		}
		p.DependsOn = append(p.DependsOn, h)
	}
	signer := s.signers[id]
	rc, err := receipt.Sign(signer, id, pkt, rule, p)
	if err != nil {
		return errf(400, CodeInvalid, trim(err.Error()))
	}
	if outcomeHash != nil || reasonHash != nil {
		// The caller gave hashes rather than bytes: put them in and sign again (Sign hashes
		// bytes; the receipt's id and nonce stay the fresh ones Sign chose).
		if outcomeHash != nil {
			rc.OutcomeHash = *outcomeHash
		}
		if reasonHash != nil {
			rc.ReasonHash = reasonHash
		}
		msg, err := rc.SigningBytes()
		if err != nil {
			return errf(400, CodeInvalid, trim(err.Error()))
		}
		sig, err := signer.Sign(msg)
		if err != nil || len(sig) != len(rc.Signature) {
			return errf(500, CodeInternal, "signing the receipt failed")
		}
		copy(rc.Signature[:], sig)
	}
	wire, err := rc.Marshal()
	if err != nil {
		return errf(500, CodeInternal, "encoding the receipt failed")
	}
	rd, err := rc.Digest()
	if err != nil {
		return errf(500, CodeInternal, "digest of the receipt failed")
	}
	pd, err := approval.Digest(pkt, rule)
	if err != nil {
		return errf(500, CodeInternal, "digest of the packet failed")
	}
	s.log.Info("receipt signed", "executor", id, "packet_id", pkt.PacketID, "receipt_id", rc.ReceiptID, "status", string(rc.Status))
	writeJSON(w, 201, map[string]any{
		"receipt": json.RawMessage(wire), "receipt_id": rc.ReceiptID, "receipt_digest": hex.EncodeToString(rd[:]),
		"packet_id": pkt.PacketID, "packet_digest": digestKey(pd),
	})
	return nil
}

// receiptDependency is a receipt that depends_on names, with the envelope it answers.
type receiptDependency struct {
	Receipt  json.RawMessage `json:"receipt"`
	Envelope json.RawMessage `json:"envelope"`
}

// receiptVerifyRequest is the body of POST /v1/receipts/verify.
type receiptVerifyRequest struct {
	Receipt       json.RawMessage     `json:"receipt"`
	Envelope      json.RawMessage     `json:"envelope"`
	Outcome       *string             `json:"outcome"`
	OutcomeBase64 *string             `json:"outcome_base64"`
	Reason        *string             `json:"reason"`
	ReasonBase64  *string             `json:"reason_base64"`
	Dependencies  []receiptDependency `json:"dependencies"`
}

// ReceiptDecision is the body of a POST /v1/receipts/verify answer (200, for ACCEPT and
// REJECT alike).
type ReceiptDecision struct {
	Decision      string      `json:"decision"`
	Reason        reason.Code `json:"reason"`
	Detail        string      `json:"detail"`
	ReceiptID     string      `json:"receipt_id"`
	ReceiptDigest string      `json:"receipt_digest"`
	PacketID      string      `json:"packet_id"`
	Executor      string      `json:"executor"`
	Status        string      `json:"status"`
	DryRun        bool        `json:"dry_run"`
}

func parseReceipt(name string, raw json.RawMessage) (*receipt.Receipt, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errf(400, CodeInvalid, name+" is required")
	}
	rc, err := receipt.Parse(raw)
	if err != nil {
		return nil, errf(400, CodeMalformed, name+": "+trim(err.Error()))
	}
	return rc, nil
}

// handleVerifyReceipt is POST /v1/receipts/verify: a receipt checked against the envelope
// of the handoff it answers (see receipt.Verifier.Verify), its nonce consumed on ACCEPT
// unless dry_run is set.
func (s *Server) handleVerifyReceipt(w http.ResponseWriter, r *http.Request, _ caller) *apiError {
	dry, aerr := parseBool("dry_run", r.URL.Query().Get("dry_run"))
	if aerr != nil {
		return aerr
	}
	var req receiptVerifyRequest
	if aerr := s.decodeBody(w, r, &req); aerr != nil {
		return aerr
	}
	rc, aerr := parseReceipt("receipt", req.Receipt)
	if aerr != nil {
		return aerr
	}
	env, aerr := s.parseEnvelope("envelope", req.Envelope)
	if aerr != nil {
		return aerr
	}
	opt := receipt.VerifyOptions{DryRun: dry}
	outcome, hasOutcome, aerr := bytesField{req.Outcome, req.OutcomeBase64}.value("outcome")
	if aerr != nil {
		return aerr
	}
	why, hasReason, aerr := bytesField{req.Reason, req.ReasonBase64}.value("reason")
	if aerr != nil {
		return aerr
	}
	if hasReason && !hasOutcome {
		return errf(400, CodeInvalid, "reason needs outcome")
	}
	if hasOutcome {
		opt.Outcome = outcome
		if opt.Outcome == nil {
			opt.Outcome = []byte{}
		}
		if hasReason {
			opt.Reason = why
			if opt.Reason == nil {
				opt.Reason = []byte{}
			}
		}
	}
	if len(req.Dependencies) > maxReceiptDependencies {
		return errf(400, CodeInvalid, fmt.Sprintf("more than %d dependencies", maxReceiptDependencies))
	}
	type dep struct {
		r   *receipt.Receipt
		env *packet.Envelope
	}
	deps := make(map[[32]byte]dep, len(req.Dependencies))
	for i, d := range req.Dependencies {
		name := fmt.Sprintf("dependencies[%d]", i)
		dr, aerr := parseReceipt(name+".receipt", d.Receipt)
		if aerr != nil {
			return aerr
		}
		de, aerr := s.parseEnvelope(name+".envelope", d.Envelope)
		if aerr != nil {
			return aerr
		}
		dg, err := dr.Digest()
		if err != nil {
			return errf(400, CodeMalformed, name+".receipt: "+trim(err.Error()))
		}
		deps[dg] = dep{dr, de}
	}
	opt.Dependencies = func(d [32]byte) (*receipt.Receipt, *packet.Envelope, bool) {
		x, ok := deps[d]
		return x.r, x.env, ok
	}
	out := ReceiptDecision{
		Decision: verify.Reject, ReceiptID: rc.ReceiptID, PacketID: rc.PacketID,
		Executor: rc.Executor, Status: string(rc.Status), DryRun: dry,
	}
	if dg, err := rc.Digest(); err == nil {
		out.ReceiptDigest = hex.EncodeToString(dg[:])
	}
	err := s.receipts.Verify(r.Context(), rc, env, opt)
	if err == nil {
		out.Decision, out.Reason, out.Detail = verify.Accept, reason.OK, "receipt verified"
	} else {
		out.Reason, out.Detail = reason.Of(err, reason.MalformedEnvelope), trim(err.Error())
	}
	s.metrics.receipts.WithLabelValues(out.Decision, string(out.Reason)).Inc()
	if out.Reason == reason.StoreUnavailable {
		s.metrics.storeErrors.Inc()
		s.log.Warn("store unavailable", "receipt_id", rc.ReceiptID, "error", out.Detail)
		return errf(503, CodeUnavailable, out.Detail)
	}
	writeJSON(w, 200, out)
	return nil
}
