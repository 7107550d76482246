// Package bundle implements workflow bundles (trusthandoff/bundle/v1): everything needed to
// prove, offline and long afterwards, what a multi-agent workflow delegated, under which
// authority, who executed each step and what came back.
//
// A bundle lists the workflow's steps. Each step is one handoff: its envelope (the signed
// packet with its capability chain and signed approvals beside it, as they travel), the
// executor's receipt, optionally the outcome bytes the receipt hashes, and the audit
// records of the step with their inclusion proofs. The bundle also carries the audit log's
// signed checkpoint those proofs lead to, and optionally a snapshot of the agent registry.
//
// Parse reads a bundle strictly (the same rules as an envelope: no duplicate or unknown
// keys, exact JSON types, bounded size and nesting) and checks that every part decodes.
// Verify checks a parsed bundle against a registry the caller trusts; see Verify for the
// checks and Error for how failures name their step. spec/bundles.md describes the format.
package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// Version is the bundle format version.
const Version = "trusthandoff/bundle/v1"

// Workflow kinds: how the steps of a bundle were selected.
const (
	// ByTaskID: every step's packet carries task_id == Workflow.ID (signed by its sender).
	ByTaskID = "task_id"
	// ByCorrelation: every step's acceptance was logged with correlation_id == Workflow.ID.
	ByCorrelation = "correlation_id"
)

// Default limits of Parse.
const (
	DefaultMaxBytes = 64 << 20 // the whole bundle
	DefaultMaxSteps = 1024
	// MaxAuditEntries bounds the audit records of one step.
	MaxAuditEntries = 64
	// MaxProofHashes bounds one inclusion proof: a tree of 2^64 leaves needs 64 hashes.
	MaxProofHashes = 64
	// MaxCheckpointBytes bounds the signed checkpoint note.
	MaxCheckpointBytes = 64 << 10
)

// ErrMalformed is wrapped by every error of Parse: the bytes are not a well-formed bundle.
var ErrMalformed = errors.New("malformed bundle")

// ParseError is a Parse failure. Path names the offending part ("steps[2].envelope").
type ParseError struct {
	Path string
	Msg  string
	Err  error // optional cause (a *reason.Error from a part's own parser, a JSON error)
}

func (e *ParseError) Error() string {
	s := "bundle: " + e.Msg
	if e.Path != "" {
		s = "bundle: " + e.Path + ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrMalformed and the cause, for errors.Is and errors.As.
func (e *ParseError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformed, e.Err}
	}
	return []error{ErrMalformed}
}

func malformed(path string, err error, format string, args ...any) error {
	return &ParseError{Path: path, Msg: fmt.Sprintf(format, args...), Err: err}
}

// Workflow names the workflow a bundle records.
type Workflow struct {
	Kind string `json:"kind"` // ByTaskID or ByCorrelation
	ID   string `json:"id"`
}

// AuditEntry is one audit log record and its inclusion proof.
type AuditEntry struct {
	// Index is the record's leaf index in the log (its seq minus one).
	Index uint64
	// Record is the record line exactly as in the log, without its newline.
	Record string
	// Proof is the RFC 6962 inclusion proof of the leaf in the tree the bundle's
	// checkpoint signs.
	Proof [][32]byte
}

// Step is one handoff of the workflow.
type Step struct {
	// Envelope is the envelope JSON as verified: packet, unsigned chain, capabilities
	// (root first) and approvals. It is kept as received (see packet.ParseEnvelope).
	Envelope json.RawMessage
	// Receipt is the executor's receipt JSON (trusthandoff/receipt/v1); nil when absent.
	Receipt json.RawMessage
	// Outcome is the outcome the receipt's outcome_hash names; nil when not carried.
	Outcome []byte
	// Reason is the reason the receipt's reason_hash names; nil when not carried (with an
	// Outcome, nil means the receipt must carry no reason_hash).
	Reason []byte
	// Audit holds the step's audit records (its packet_accepted record first).
	Audit []AuditEntry
}

// Bundle is a parsed trusthandoff/bundle/v1 document.
type Bundle struct {
	Version   string
	Workflow  Workflow
	CreatedAt time.Time
	Steps     []Step
	// Checkpoint is the audit log's signed checkpoint note the proofs lead to ("": none).
	Checkpoint string
	// Registry is a registry file snapshot (registry.Parse format); nil: none. It is
	// informational: Verify trusts the registry its caller passes.
	Registry json.RawMessage
}

// Limits bound what Parse accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes int // DefaultMaxBytes
	MaxSteps int // DefaultMaxSteps
	// Envelope bounds each envelope as the verifiers do (default 1 MiB, depth 64).
	Envelope canonical.Limits
}

func (l Limits) maxBytes() int {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return DefaultMaxBytes
}

func (l Limits) maxSteps() int {
	if l.MaxSteps > 0 {
		return l.MaxSteps
	}
	return DefaultMaxSteps
}

// envelopeDepth is how deep an envelope sits in a bundle: {"steps": [{"envelope": …}]}.
const envelopeDepth = 3

// Parse strictly decodes a bundle. The document must be one JSON object with exactly the
// fields of the format (no duplicates, no unknown fields, exact types); every envelope
// must pass packet.ParseEnvelope, every registry snapshot registry.Parse, and the other
// parts their shape checks (receipts are checked by Verify). Errors wrap ErrMalformed
// (*ParseError names the part).
func Parse(data []byte, lim Limits) (*Bundle, error) {
	if len(data) > lim.maxBytes() {
		return nil, malformed("", nil, "%d bytes is over the %d-byte limit", len(data), lim.maxBytes())
	}
	envDepth := lim.Envelope.MaxDepth
	if envDepth <= 0 {
		envDepth = canonical.DefaultMaxDepth
	}
	v, err := canonical.Parse(data, canonical.Limits{MaxBytes: lim.maxBytes(), MaxDepth: envDepth + envelopeDepth})
	if err != nil {
		return nil, malformed("", err, "not valid JSON")
	}
	// The strict parse has ruled out duplicate keys, invalid UTF-8 and bad numbers; the
	// shape check below has ruled out any key encoding/json would match loosely (it folds
	// case). Only then does encoding/json cut out the parts kept as bytes.
	if err := checkShape(&v, lim); err != nil {
		return nil, err
	}
	var w wireBundle
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, malformed("", err, "cannot decode")
	}
	b := &Bundle{Version: w.Version, Workflow: w.Workflow, Registry: nullToNil(w.Registry)}
	if w.Checkpoint != nil {
		b.Checkpoint = *w.Checkpoint
	}
	ts, err := canonical.ParseTimestamp(w.CreatedAt)
	if err != nil {
		return nil, malformed("created_at", err, "not an RFC 3339 time")
	}
	b.CreatedAt = ts.Time()
	b.Steps = make([]Step, len(w.Steps))
	for i, ws := range w.Steps {
		path := "steps[" + strconv.Itoa(i) + "]"
		s := &b.Steps[i]
		s.Envelope = ws.Envelope
		if _, err := packet.ParseEnvelope(s.Envelope, lim.Envelope); err != nil {
			return nil, malformed(path+".envelope", err, "not a valid envelope")
		}
		s.Receipt = nullToNil(ws.Receipt)
		if ws.Outcome != nil {
			if s.Outcome, err = decodeBase64(*ws.Outcome); err != nil {
				return nil, malformed(path+".outcome", nil, "not canonical standard base64")
			}
		}
		if ws.Reason != nil {
			if s.Reason, err = decodeBase64(*ws.Reason); err != nil {
				return nil, malformed(path+".reason", nil, "not canonical standard base64")
			}
		}
		for j, we := range ws.Audit {
			apath := path + ".audit[" + strconv.Itoa(j) + "]"
			e := AuditEntry{Index: we.Index, Record: we.Record, Proof: make([][32]byte, len(we.Proof))}
			for k, h := range we.Proof {
				raw, err := decodeBase64(h)
				if err != nil || len(raw) != 32 {
					return nil, malformed(apath+".proof["+strconv.Itoa(k)+"]", nil, "not the standard base64 of a 32-byte hash")
				}
				e.Proof[k] = [32]byte(raw)
			}
			s.Audit = append(s.Audit, e)
		}
	}
	if b.Registry != nil {
		if _, err := registry.Parse(b.Registry); err != nil {
			return nil, malformed("registry", err, "not a valid registry snapshot")
		}
	}
	return b, nil
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	return raw
}

// decodeBase64 accepts only canonical padded standard base64 (one spelling per value).
func decodeBase64(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != s {
		return nil, errors.New("not canonical base64")
	}
	return raw, nil
}

// wireBundle is the JSON form, read after checkShape and written by Marshal.
type wireBundle struct {
	Version    string          `json:"version"`
	Workflow   Workflow        `json:"workflow"`
	CreatedAt  string          `json:"created_at"`
	Steps      []wireStep      `json:"steps"`
	Checkpoint *string         `json:"checkpoint"`
	Registry   json.RawMessage `json:"registry"`
}

type wireStep struct {
	Envelope json.RawMessage `json:"envelope"`
	Receipt  json.RawMessage `json:"receipt"`
	Outcome  *string         `json:"outcome"`
	Reason   *string         `json:"reason"`
	Audit    []wireAudit     `json:"audit"`
}

type wireAudit struct {
	Index  uint64   `json:"index"`
	Record string   `json:"record"`
	Proof  []string `json:"proof"`
}

// object checks that v is an object whose keys are among fields, with every required
// one present, and returns its members by key.
func object(v *canonical.Value, path string, required []string, optional ...string) (map[string]*canonical.Value, error) {
	if v.Kind != canonical.Object {
		return nil, malformed(path, nil, "must be an object, not %s", v.Kind)
	}
	known := map[string]bool{}
	for _, k := range required {
		known[k] = true
	}
	for _, k := range optional {
		known[k] = true
	}
	got := make(map[string]*canonical.Value, len(v.Obj))
	for i := range v.Obj {
		m := &v.Obj[i]
		if !known[m.Key] {
			return nil, malformed(path, nil, "unknown field %q", truncate(m.Key))
		}
		got[m.Key] = &m.Value
	}
	for _, k := range required {
		if got[k] == nil {
			return nil, malformed(path, nil, "missing field %q", k)
		}
	}
	return got, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func wantKind(v *canonical.Value, path string, kinds ...canonical.Kind) error {
	for _, k := range kinds {
		if v.Kind == k {
			return nil
		}
	}
	return malformed(path, nil, "must be %s, not %s", kinds[0], v.Kind)
}

// checkShape checks the bundle's own structure (the parts have their own parsers).
func checkShape(v *canonical.Value, lim Limits) error {
	top, err := object(v, "", []string{"version", "workflow", "created_at", "steps"}, "checkpoint", "registry")
	if err != nil {
		return err
	}
	if err := wantKind(top["version"], "version", canonical.String); err != nil {
		return err
	}
	if top["version"].Str != Version {
		return malformed("version", nil, "unsupported version %q (want %q)", truncate(top["version"].Str), Version)
	}
	wf, err := object(top["workflow"], "workflow", []string{"kind", "id"})
	if err != nil {
		return err
	}
	for _, k := range []string{"kind", "id"} {
		if err := wantKind(wf[k], "workflow."+k, canonical.String); err != nil {
			return err
		}
	}
	if k := wf["kind"].Str; k != ByTaskID && k != ByCorrelation {
		return malformed("workflow.kind", nil, "must be %q or %q", ByTaskID, ByCorrelation)
	}
	if wf["id"].Str == "" {
		return malformed("workflow.id", nil, "must not be empty")
	}
	if err := wantKind(top["created_at"], "created_at", canonical.String); err != nil {
		return err
	}
	if c := top["checkpoint"]; c != nil {
		if err := wantKind(c, "checkpoint", canonical.String, canonical.Null); err != nil {
			return err
		}
		if len(c.Str) > MaxCheckpointBytes {
			return malformed("checkpoint", nil, "over %d bytes", MaxCheckpointBytes)
		}
	}
	if r := top["registry"]; r != nil {
		if err := wantKind(r, "registry", canonical.Object, canonical.Null); err != nil {
			return err
		}
	}
	steps := top["steps"]
	if err := wantKind(steps, "steps", canonical.Array); err != nil {
		return err
	}
	if len(steps.Arr) == 0 {
		return malformed("steps", nil, "a bundle has at least one step")
	}
	if len(steps.Arr) > lim.maxSteps() {
		return malformed("steps", nil, "%d steps is over the limit of %d", len(steps.Arr), lim.maxSteps())
	}
	for i := range steps.Arr {
		if err := checkStep(&steps.Arr[i], "steps["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return nil
}

func checkStep(v *canonical.Value, path string) error {
	st, err := object(v, path, []string{"envelope"}, "receipt", "outcome", "reason", "audit")
	if err != nil {
		return err
	}
	if err := wantKind(st["envelope"], join(path, "envelope"), canonical.Object); err != nil {
		return err
	}
	if r := st["receipt"]; r != nil {
		if err := wantKind(r, join(path, "receipt"), canonical.Object, canonical.Null); err != nil {
			return err
		}
	}
	for _, k := range []string{"outcome", "reason"} {
		if o := st[k]; o != nil {
			if err := wantKind(o, join(path, k), canonical.String, canonical.Null); err != nil {
				return err
			}
		}
	}
	a := st["audit"]
	if a == nil {
		return nil
	}
	if err := wantKind(a, join(path, "audit"), canonical.Array); err != nil {
		return err
	}
	if len(a.Arr) > MaxAuditEntries {
		return malformed(join(path, "audit"), nil, "over %d records", MaxAuditEntries)
	}
	for j := range a.Arr {
		ep := path + ".audit[" + strconv.Itoa(j) + "]"
		e, err := object(&a.Arr[j], ep, []string{"index", "record", "proof"})
		if err != nil {
			return err
		}
		if err := wantKind(e["index"], ep+".index", canonical.Int); err != nil {
			return err
		}
		if _, err := strconv.ParseUint(e["index"].Str, 10, 64); err != nil {
			return malformed(ep+".index", nil, "must be an integer in [0, 2^64)")
		}
		if err := wantKind(e["record"], ep+".record", canonical.String); err != nil {
			return err
		}
		if e["record"].Str == "" || bytes.ContainsAny([]byte(e["record"].Str), "\n") {
			return malformed(ep+".record", nil, "must be one non-empty line")
		}
		proof := e["proof"]
		if err := wantKind(proof, ep+".proof", canonical.Array); err != nil {
			return err
		}
		if len(proof.Arr) > MaxProofHashes {
			return malformed(ep+".proof", nil, "over %d hashes", MaxProofHashes)
		}
		for k := range proof.Arr {
			if err := wantKind(&proof.Arr[k], ep+".proof["+strconv.Itoa(k)+"]", canonical.String); err != nil {
				return err
			}
		}
	}
	return nil
}

// truncate keeps hostile keys short in messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Marshal returns the bundle's JSON (indented, parts written value for value as they were
// read). It checks nothing a Parse would not: Marshal of a parsed bundle parses again.
func (b *Bundle) Marshal() ([]byte, error) {
	w := wireBundle{
		Version: b.Version, Workflow: b.Workflow,
		CreatedAt: canonical.FormatTimestamp(canonical.TimestampOf(b.CreatedAt.UTC()), canonical.ISOZ),
		Steps:     make([]wireStep, len(b.Steps)), Registry: b.Registry,
	}
	if b.Checkpoint != "" {
		w.Checkpoint = &b.Checkpoint
	}
	for i, s := range b.Steps {
		ws := wireStep{Envelope: s.Envelope, Receipt: s.Receipt, Audit: []wireAudit{}}
		if s.Outcome != nil {
			o := base64.StdEncoding.EncodeToString(s.Outcome)
			ws.Outcome = &o
		}
		if s.Reason != nil {
			r := base64.StdEncoding.EncodeToString(s.Reason)
			ws.Reason = &r
		}
		for _, e := range s.Audit {
			we := wireAudit{Index: e.Index, Record: e.Record, Proof: make([]string, len(e.Proof))}
			for k, h := range e.Proof {
				we.Proof[k] = base64.StdEncoding.EncodeToString(h[:])
			}
			ws.Audit = append(ws.Audit, we)
		}
		w.Steps[i] = ws
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return buf.Bytes(), nil
}
