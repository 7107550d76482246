package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode"

	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// Option configures Verify.
type Option func(*config) error

type config struct {
	verifyOpts     []verify.Option
	logKey         note.Verifier
	unsigned       bool
	unaudited      bool
	bundleRegistry bool
	limits         Limits
}

// WithVerifierOptions applies the receiver's policy to every handoff (strict mode, action
// catalogue, approval threshold, maximum depth, skew…), as verify.New takes it. Clock,
// replay and revocation options are Verify's own: every handoff is verified in a dry run,
// as of its step's time, against an empty replay and revocation store. Verify refuses
// (returns an error) options that include verify.WithAudit: verify's dry runs emit their
// audit events, and checking a bundle offline must write nothing.
func WithVerifierOptions(opts ...verify.Option) Option {
	return func(c *config) error { c.verifyOpts = append(c.verifyOpts, opts...); return nil }
}

// WithLogKey names the audit log's note verifier key (name+id+key, as `trusthandoff audit
// checkpoint --show-key` prints it): the checkpoint must be signed by it.
func WithLogKey(vkey string) Option {
	return func(c *config) error {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return fmt.Errorf("bundle: log key: %w", err)
		}
		c.logKey = v
		return nil
	}
}

// WithUnsignedCheckpoint, when no log key is given (WithLogKey), proves the bundle's audit
// records against its checkpoint's tree without checking who signed the checkpoint: the
// records are consistent with the checkpoint, which its author may have made. The
// report's checkpoint then says so (Authenticated false). Every other check is unchanged:
// authority, approvals, execution by the delegate in time and the chain of results do not
// depend on the audit log's key.
func WithUnsignedCheckpoint() Option { return func(c *config) error { c.unsigned = true; return nil } }

// WithoutAudit accepts steps without audit records and a bundle without a checkpoint.
// Audit records and a checkpoint the bundle does carry are still checked. Without them, a
// step's time is its receipt's started_at (the executor's signed claim), not the time its
// receiver logged the acceptance.
func WithoutAudit() Option { return func(c *config) error { c.unaudited = true; return nil } }

// WithBundleRegistry verifies against the bundle's own registry snapshot when the caller
// passes no registry. The snapshot is whatever the bundle's author put there: this proves
// consistency, not identity. Without this option a nil registry is a failure.
func WithBundleRegistry() Option {
	return func(c *config) error { c.bundleRegistry = true; return nil }
}

// WithLimits sets the envelope limits handoffs are decoded with (default 1 MiB, depth 64).
func WithLimits(l Limits) Option { return func(c *config) error { c.limits = l; return nil } }

// Report is what Verify found, step by step. Its JSON form is `trusthandoff bundle
// verify`'s output.
type Report struct {
	Version    string        `json:"version"`
	Workflow   Workflow      `json:"workflow"`
	OK         bool          `json:"ok"`
	Checkpoint *CheckpointOf `json:"checkpoint,omitempty"`
	Steps      []StepReport  `json:"steps"`
	Failures   []*StepError  `json:"-"`
	Errors     []FailureJSON `json:"failures"`
}

// CheckpointOf describes the verified checkpoint.
type CheckpointOf struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// Signer is the log key that signed it; "" when it was not checked
	// (WithUnsignedCheckpoint).
	Signer string `json:"signer"`
	// Authenticated: the checkpoint's signature by the log key was checked.
	Authenticated bool `json:"authenticated"`
}

// StepReport is the verdict on one step.
type StepReport struct {
	Step       int         `json:"step"`
	PacketID   string      `json:"packet_id"`
	From       string      `json:"from_agent"`
	To         string      `json:"to_agent"`
	Intent     string      `json:"intent"`
	Actions    []string    `json:"actions"`
	Digest     string      `json:"packet_digest,omitempty"`
	At         time.Time   `json:"verified_at"`
	AtSource   string      `json:"verified_at_source"` // "audit", "receipt" or "issued_at"
	Decision   string      `json:"decision"`
	Reason     reason.Code `json:"reason"`
	Flags      []string    `json:"flags,omitempty"`
	Approvals  int         `json:"approvals"`
	Capability []string    `json:"capability_chain,omitempty"`
	Executor   string      `json:"executor,omitempty"`
	Status     string      `json:"status,omitempty"`
	ReceiptID  string      `json:"receipt_id,omitempty"`
	DependsOn  []int       `json:"depends_on_steps,omitempty"`
	AuditSeq   []uint64    `json:"audit_seqs,omitempty"`
	OK         bool        `json:"ok"`
}

// FailureJSON is a StepError as JSON.
type FailureJSON struct {
	Step     int         `json:"step"`
	PacketID string      `json:"packet_id,omitempty"`
	Problem  Problem     `json:"problem"`
	Reason   reason.Code `json:"reason,omitempty"`
	Detail   string      `json:"detail"`
}

// Registry is what Verify needs from the agent registry (a *registry.Registry).
type Registry = verify.Registry

// Verify checks a bundle offline against reg, the registry the caller trusts (nil: see
// WithBundleRegistry). For every step, in order:
//
//   - the step is new (no packet id or sender nonce twice) and of the bundle's workflow;
//   - its audit records are leaves of the checkpoint's tree (inclusion proofs), the
//     checkpoint is signed by the log key (WithLogKey; WithUnsignedCheckpoint skips the
//     signature when no key is given), and a packet_accepted record
//     that is not a dry run's names this packet, nonce, sender and receiver;
//   - its envelope verifies (the whole pipeline in a dry run: identity, signature, time,
//     capability chain and attenuation, depth, approvals where the policy requires them)
//     as of the time the acceptance was logged;
//   - its receipt verifies (receipt.Verify): signed by the packet's receiver, bound to the
//     packet's digest, executed inside the packet's validity; the carried outcome, if
//     any, matches outcome_hash; it finished before any capability of the chain expired
//     (runtime revalidation cuts execution off then); its nonce is not one an earlier
//     step's receipt by the same executor key used;
//   - every receipt its receipt depends on is the verified receipt of an earlier step,
//     finished before this one started.
//
// Verify returns a report of every step and, when anything failed, an *Error listing each
// failure (at most one per step and check) with the step it concerns; every failure
// wraps ErrInvalid.
func Verify(ctx context.Context, b *Bundle, reg Registry, opts ...Option) (*Report, error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("bundle: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.refuseAudit(); err != nil {
		return nil, err
	}
	rep := &Report{Version: b.Version, Workflow: b.Workflow, Steps: make([]StepReport, len(b.Steps))}
	fail := func(f *StepError) {
		rep.Failures = append(rep.Failures, f)
	}
	if b.Version != Version {
		fail(&StepError{Problem: ProblemMalformed, Msg: fmt.Sprintf("unsupported version %q", truncate(b.Version))})
		return rep.finish()
	}
	if isNilRegistry(reg) {
		if !cfg.bundleRegistry || b.Registry == nil {
			fail(&StepError{Problem: ProblemRegistry, Msg: "no registry to verify against (the bundle's own snapshot is used only when asked for)"})
			return rep.finish()
		}
		r, err := registry.Parse(b.Registry)
		if err != nil {
			fail(&StepError{Problem: ProblemMalformed, Msg: "registry snapshot", Err: err})
			return rep.finish()
		}
		reg = r
	}
	cp, cpOK := checkCheckpoint(b, &cfg, rep, fail)

	v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), cfg.verifierOptions()...)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	w := &walker{b: b, cfg: &cfg, v: v, reg: reg, cp: cp, cpOK: cpOK, rep: rep, fail: fail,
		packetIDs: map[string]int{}, nonces: map[string]int{}, receiptNonces: map[string]int{}}
	for i := range b.Steps {
		w.step(ctx, i)
	}
	w.dependencies()
	return rep.finish()
}

func (c *config) verifierOptions() []verify.Option {
	// The empty revocation store records the dry runs' nothing; revocations that matter
	// offline are the registry's (revoked_at), which Resolve applies as of each step's time.
	opts := append([]verify.Option{}, c.verifyOpts...)
	return append(opts, verify.WithRevocations(revocation.NewMemory(revocation.MemoryConfig{})))
}

// refuseAudit returns ErrAuditOption when the verifier options set an audit sink: they
// are applied to a probe verifier, which is asked.
func (c *config) refuseAudit() error {
	probe, err := verify.New(registry.New(), replay.NewMemory(replay.MemoryConfig{}), c.verifierOptions()...)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if probe.Audits() {
		return ErrAuditOption
	}
	return nil
}

func isNilRegistry(r Registry) bool {
	if r == nil {
		return true
	}
	if rr, ok := r.(*registry.Registry); ok && rr == nil {
		return true
	}
	return false
}

// finish fills the report's verdicts from its failures.
func (rep *Report) finish() (*Report, error) {
	slices.SortStableFunc(rep.Failures, func(a, b *StepError) int { return a.Step - b.Step })
	bad := map[int]bool{}
	rep.Errors = make([]FailureJSON, len(rep.Failures))
	for i, f := range rep.Failures {
		bad[f.Step] = true
		detail := f.Msg
		if f.Err != nil {
			if detail != "" {
				detail += ": "
			}
			detail += f.Err.Error()
		}
		rep.Errors[i] = FailureJSON{Step: f.Step, PacketID: f.PacketID, Problem: f.Problem, Reason: f.Reason, Detail: detail}
	}
	for i := range rep.Steps {
		rep.Steps[i].OK = !bad[i+1] && !bad[0] && rep.Steps[i].Step != 0
	}
	rep.OK = len(rep.Failures) == 0
	if rep.OK {
		return rep, nil
	}
	return rep, &Error{Failures: rep.Failures}
}

// checkCheckpoint opens the bundle's checkpoint with the log key.
func checkCheckpoint(b *Bundle, cfg *config, rep *Report, fail func(*StepError)) (audit.Checkpoint, bool) {
	switch {
	case b.Checkpoint == "" && cfg.unaudited:
		return audit.Checkpoint{}, false
	case b.Checkpoint == "":
		fail(&StepError{Problem: ProblemCheckpoint, Msg: "the bundle carries no audit checkpoint"})
		return audit.Checkpoint{}, false
	case cfg.logKey == nil && cfg.unsigned:
		cp, err := unsignedCheckpoint([]byte(b.Checkpoint))
		if err != nil {
			fail(&StepError{Problem: ProblemCheckpoint, Msg: "not a checkpoint note", Err: err})
			return audit.Checkpoint{}, false
		}
		rep.Checkpoint = &CheckpointOf{Origin: cp.Origin, Size: cp.Size}
		return cp, true
	case cfg.logKey == nil:
		fail(&StepError{Problem: ProblemCheckpoint, Msg: "no log key to check the checkpoint's signature with"})
		return audit.Checkpoint{}, false
	}
	cp, err := openCheckpoint([]byte(b.Checkpoint), cfg.logKey)
	if err != nil {
		fail(&StepError{Problem: ProblemCheckpoint, Msg: "not a checkpoint signed by the log key " + cfg.logKey.Name(), Err: err})
		return audit.Checkpoint{}, false
	}
	rep.Checkpoint = &CheckpointOf{Origin: cp.Origin, Size: cp.Size, Signer: cfg.logKey.Name(), Authenticated: true}
	return cp, true
}

// walker carries the state of one Verify across steps.
type walker struct {
	b    *Bundle
	cfg  *config
	v    *verify.Verifier
	reg  Registry
	cp   audit.Checkpoint
	cpOK bool
	rep  *Report
	fail func(*StepError)

	packetIDs map[string]int // packet id -> step (1-based)
	nonces    map[string]int // sender key + nonce -> step
	// receiptNonces maps a verified receipt's replay key (executor key + nonce) to its step.
	receiptNonces map[string]int
	receipts      []*stepReceipt // per step; nil when absent or failed

	rv       *receipt.Verifier
	byDigest map[[32]byte]int // receipt digest -> step index (0-based)
	parsed   []*stepReceipt   // per step, for resolve
}

// step checks step i (0-based) on its own; dependencies are checked after all steps.
func (w *walker) step(ctx context.Context, i int) {
	n := i + 1
	s := &w.b.Steps[i]
	sr := &w.rep.Steps[i]
	sr.Step = n
	w.receipts = append(w.receipts, nil)
	env, err := packet.ParseEnvelope(s.Envelope, w.cfg.limits.Envelope)
	if err != nil {
		w.fail(&StepError{Step: n, Problem: ProblemMalformed, Reason: reason.Of(err, reason.MalformedEnvelope), Msg: "envelope", Err: err})
		return
	}
	p := env.Packet
	sr.PacketID, sr.From, sr.To, sr.Intent = p.PacketID, p.FromAgent, p.ToAgent, p.Intent
	sr.Actions, sr.Approvals = p.Permissions.AllowedActions, len(env.Approvals)
	stepErr := func(pr Problem, code reason.Code, msg string, err error) *StepError {
		return &StepError{Step: n, PacketID: p.PacketID, Problem: pr, Reason: code, Msg: msg, Err: err}
	}

	// New, and of this workflow.
	if prev, dup := w.packetIDs[p.PacketID]; dup {
		w.fail(stepErr(ProblemDuplicate, reason.ReplayDetected, fmt.Sprintf("packet id already used by step %d", prev), nil))
	}
	nk := p.PublicKey + "\x00" + p.Nonce
	if prev, dup := w.nonces[nk]; dup {
		w.fail(stepErr(ProblemDuplicate, reason.ReplayDetected, fmt.Sprintf("the sender's nonce was already used by step %d", prev), nil))
	}
	w.packetIDs[p.PacketID], w.nonces[nk] = n, n
	if w.b.Workflow.Kind == ByTaskID && p.TaskID != w.b.Workflow.ID {
		w.fail(stepErr(ProblemWorkflow, "", fmt.Sprintf("task_id %q is not the workflow's %q", truncate(p.TaskID), truncate(w.b.Workflow.ID)), nil))
	}

	// The audit trail: included in the checkpoint's tree, and the acceptance logged.
	accepted, ok := w.audit(s, p, sr, stepErr)
	if !ok {
		return
	}

	// The step's time: when the receiver logged the acceptance, else when the executor
	// says it started, else when the packet was issued (then only the handoff is judged).
	rc, rcErr := parseStepReceipt(s.Receipt)
	switch {
	case accepted != nil:
		sr.At, sr.AtSource = accepted.Timestamp.UTC(), "audit"
	case rc != nil:
		sr.At, sr.AtSource = rc.startedAt(), "receipt"
	default:
		sr.At, sr.AtSource = p.IssuedAt.Time(), "issued_at"
	}

	// The handoff, as its receiver verified it then (without spending anything).
	// Each step is verified as its own receiver would have: bound to its to_agent.
	d := w.v.VerifyRequest(ctx, nil, verify.Request{At: sr.At, DryRun: true, Envelope: env, Recipient: p.ToAgent})
	sr.Decision, sr.Reason, sr.Flags = d.Decision, d.Reason, d.Flags
	for _, c := range d.Chain {
		sr.Capability = append(sr.Capability, c.CapabilityID)
	}
	if !d.Accepted() {
		w.fail(stepErr(ProblemHandoff, d.Reason, "the handoff does not verify as of "+sr.At.Format(time.RFC3339Nano), d.Err))
		return
	}
	digest, err := packetDigest(p, d.Rule)
	if err != nil {
		w.fail(stepErr(ProblemMalformed, reason.MalformedEnvelope, "packet digest", err))
		return
	}
	sr.Digest = digest

	// The execution: the receipt of the packet's receiver, inside its validity.
	switch {
	case s.Receipt == nil:
		w.fail(stepErr(ProblemReceiptMissing, "", "the step carries no receipt of its execution", nil))
		return
	case rcErr != nil:
		w.fail(stepErr(ProblemReceipt, reason.Of(rcErr, reason.MalformedEnvelope), "", rcErr))
		return
	}
	// Nothing may run before its gate let it through.
	if sr.AtSource == "audit" && rc.r.StartedAt.Before(sr.At.Add(-w.v.TimePolicy().Skew)) {
		w.fail(stepErr(ProblemReceipt, reason.ExecutionOutsideValidity, fmt.Sprintf("execution started at %s, before the handoff was accepted at %s",
			rc.r.StartedAt.Format(time.RFC3339Nano), sr.At.Format(time.RFC3339Nano)), nil))
		return
	}
	if err := w.checkReceipt(ctx, rc, env, d, s, sr); err != nil {
		var se *StepError
		if errors.As(err, &se) {
			se.Step, se.PacketID = n, p.PacketID
			w.fail(se)
		} else {
			w.fail(stepErr(ProblemReceipt, reason.Of(err, ""), "", err))
		}
		return
	}
	// The gate's runtime revalidation ends execution the moment a capability of the
	// chain expires: a receipt finishing later ran without authority (a TIMEOUT receipt,
	// cut off then, may take the skew to return, as receipt.Verify allows at expiry).
	for _, c := range d.Chain {
		end := c.ExpiresAt.Time()
		if rc.r.Status == receipt.StatusTimeout {
			end = end.Add(w.v.TimePolicy().Skew)
		}
		if rc.r.FinishedAt.After(end) {
			w.fail(stepErr(ProblemReceipt, reason.ExecutionOutsideValidity, fmt.Sprintf("execution finished at %s, after capability %s of the chain expired at %s",
				rc.r.FinishedAt.Format(time.RFC3339Nano), truncate(c.CapabilityID), c.ExpiresAt.Time().Format(time.RFC3339Nano)), nil))
			return
		}
	}
	// The offline form of the receipt's nonce check: within the bundle, an executor key
	// uses a nonce once. As with a replay store, only a receipt that verified counts.
	key, err := receipt.ReplayKey(rc.r)
	if err != nil {
		w.fail(stepErr(ProblemReceipt, reason.PublicKeyMismatch, "receipt public_key", err))
		return
	}
	if prev, dup := w.receiptNonces[string(key)]; dup {
		w.fail(stepErr(ProblemReceipt, reason.ReplayDetected, fmt.Sprintf("the executor's receipt nonce was already used by step %d", prev), nil))
		return
	}
	w.receiptNonces[string(key)] = n
	w.receipts[i] = rc
}

// auditRecord is what a bundle needs of an audit record line.
type auditRecord struct {
	Seq           uint64    `json:"seq"`
	EventType     string    `json:"event_type"`
	Timestamp     time.Time `json:"timestamp"`
	CorrelationID string    `json:"correlation_id"`
	Payload       struct {
		PacketID  string `json:"packet_id"`
		Decision  string `json:"decision"`
		Nonce     string `json:"nonce"`
		FromAgent string `json:"from_agent"`
		ToAgent   string `json:"to_agent"`
		DryRun    bool   `json:"dry_run"`
	} `json:"payload"`
}

// audit checks step s's audit entries and returns its packet_accepted record (nil when it
// has none and the bundle may be unaudited). ok is false when the step failed.
func (w *walker) audit(s *Step, p *packet.Packet, sr *StepReport, stepErr func(Problem, reason.Code, string, error) *StepError) (accepted *auditRecord, ok bool) {
	ok = true
	for j, e := range s.Audit {
		var rec auditRecord
		if err := json.Unmarshal([]byte(e.Record), &rec); err != nil {
			w.fail(stepErr(ProblemAuditMismatch, "", fmt.Sprintf("audit record %d is not an audit record", j+1), err))
			return nil, false
		}
		if rec.Seq != e.Index+1 {
			w.fail(stepErr(ProblemAuditMismatch, "", fmt.Sprintf("audit record %d has seq %d but sits at leaf %d", j+1, rec.Seq, e.Index), nil))
			return nil, false
		}
		sr.AuditSeq = append(sr.AuditSeq, rec.Seq)
		if w.cpOK {
			if err := checkInclusion(w.cp, e.Index, []byte(e.Record), e.Proof); err != nil {
				w.fail(stepErr(ProblemProof, "", fmt.Sprintf("audit record seq %d is not proven in the checkpoint", rec.Seq), err))
				return nil, false
			}
		} else if w.b.Checkpoint == "" && w.cfg.unaudited {
			// Unaudited bundles may omit records; a record they carry must still be proven.
			w.fail(stepErr(ProblemProof, "", fmt.Sprintf("audit record seq %d cannot be proven: the bundle has no checkpoint", rec.Seq), nil))
			return nil, false
		} else {
			// The checkpoint failed (reported once, for the bundle): nothing is proven.
			ok = false
		}
		// A dry run's record (a forensic re-verification, possibly as of a chosen instant)
		// accepted nothing: it is carried, proven, and never taken for the acceptance.
		if rec.EventType != audit.PacketAccepted || rec.Payload.PacketID != p.PacketID || rec.Payload.DryRun || accepted != nil {
			continue
		}
		pl := rec.Payload
		switch {
		case pl.Decision != verify.Accept, pl.Nonce != p.Nonce, pl.FromAgent != p.FromAgent, pl.ToAgent != p.ToAgent:
			w.fail(stepErr(ProblemAuditMismatch, "", fmt.Sprintf("audit record seq %d does not describe this packet's acceptance", rec.Seq), nil))
			return nil, false
		case w.b.Workflow.Kind == ByCorrelation && rec.CorrelationID != w.b.Workflow.ID:
			w.fail(stepErr(ProblemWorkflow, "", fmt.Sprintf("audit record seq %d has correlation_id %q, not the workflow's", rec.Seq, truncate(rec.CorrelationID)), nil))
			return nil, false
		}
		accepted = &rec
	}
	if !ok {
		return nil, false
	}
	if accepted == nil && !w.cfg.unaudited {
		w.fail(stepErr(ProblemAuditMissing, "", "no packet_accepted audit record of this packet (outside a dry run)", nil))
		return nil, false
	}
	if accepted == nil && w.b.Workflow.Kind == ByCorrelation {
		w.fail(stepErr(ProblemWorkflow, "", "without an audit record the step cannot be tied to the workflow's correlation id", nil))
		return nil, false
	}
	return accepted, true
}

// MalformedReport is the report of bytes that did not parse as a bundle (err from Parse):
// not OK, one bundle-level malformed failure.
func MalformedReport(err error) *Report {
	rep := &Report{Steps: []StepReport{}, Failures: []*StepError{{Problem: ProblemMalformed, Reason: reason.Of(err, ""), Err: err}}}
	rep.finish()
	return rep
}

// WriteText writes rep for people: one line per step, then the failures. Text from the
// bundle is written inert: a value holding a control, format or other non-graphic
// character (a terminal escape, a bidirectional override) is written Go-quoted.
func (rep *Report) WriteText(w io.Writer) {
	verdict := "VERIFIED"
	if !rep.OK {
		verdict = "NOT VERIFIED"
	}
	fmt.Fprintf(w, "bundle %s %s: %s, %d step(s)\n", inert(rep.Workflow.Kind), inert(rep.Workflow.ID), verdict, len(rep.Steps))
	if c := rep.Checkpoint; c != nil {
		if c.Authenticated {
			fmt.Fprintf(w, "checkpoint: %s, %d records, signed by %s\n", inert(c.Origin), c.Size, inert(c.Signer))
		} else {
			fmt.Fprintf(w, "checkpoint: %s, %d records, signature not checked (no log key)\n", inert(c.Origin), c.Size)
		}
	}
	for _, s := range rep.Steps {
		ok := "ok"
		if !s.OK {
			ok = "FAILED"
		}
		actions := make([]string, len(s.Actions))
		for i, a := range s.Actions {
			actions[i] = inert(a)
		}
		fmt.Fprintf(w, "step %d %s: %s -> %s %v %s %s", s.Step, ok, inert(s.From), inert(s.To), actions, s.Decision, inert(string(s.Reason)))
		if s.Executor != "" {
			fmt.Fprintf(w, ", %s by %s", inert(s.Status), inert(s.Executor))
		}
		if len(s.DependsOn) > 0 {
			fmt.Fprintf(w, ", uses step %v", s.DependsOn)
		}
		fmt.Fprintln(w)
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "failure: %s\n", inert(f.Error()))
	}
}

// inert returns s, or s Go-quoted when it holds a rune that is not graphic.
func inert(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
