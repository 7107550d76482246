package bundle

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// ErrNoWorkflow is wrapped by Create when no handoff belongs to the workflow.
var ErrNoWorkflow = errors.New("bundle: no handoff of the workflow")

// Input is what Create assembles a bundle from. Objects of other workflows may be mixed
// in: Create picks the workflow's own.
type Input struct {
	// Envelopes are handoff envelopes as sent or verified (wire JSON). When one packet
	// comes in several envelopes, the one with the most approvals is kept.
	Envelopes [][]byte
	// Approvals are signed approvals delivered apart from their envelope (approval JSON
	// objects); each is attached to the envelope whose packet digest it names.
	Approvals [][]byte
	// Receipts are receipt JSON documents; each step gets the receipt naming its packet.
	Receipts [][]byte
	// Outcomes and Reasons are result bytes, matched to receipts by their hashes.
	Outcomes, Reasons [][]byte
	// Log is the audit log (audit.ReadLog) and Checkpoint its signed checkpoint note
	// (the LOG.checkpoint file); proofs lead to that checkpoint's tree. Both or neither.
	Log        *audit.Log
	Checkpoint []byte
	// Registry is an optional registry snapshot (registry file JSON).
	Registry []byte
	// Now is the bundle's created_at (zero: time.Now).
	Now time.Time
	// Limits bound the envelopes as the verifiers do (zero: defaults).
	Limits canonical.Limits
}

// candidate is one handoff Create may include.
type candidate struct {
	env     *packet.Envelope
	raw     []byte
	digests [][32]byte // the packet's digest under each rule it can be written in
	audit   []AuditEntry
	order   uint64 // leaf index of its acceptance, or max for none
	rc      *receipt.Receipt
	rcRaw   []byte
}

// Create assembles the bundle of workflow wf (by task id, or by the correlation id of its
// audit records) from in. Every envelope of the workflow becomes a step, in the order
// its acceptance was logged (unlogged ones last, by issued_at), with its receipt, the
// receipt's outcome and reason when given, and the inclusion proofs of its packet_accepted
// record in the checkpoint's tree. Create does not judge the handoffs: Verify does.
func Create(wf Workflow, in Input) (*Bundle, error) {
	if wf.Kind != ByTaskID && wf.Kind != ByCorrelation {
		return nil, fmt.Errorf("bundle: workflow kind must be %q or %q", ByTaskID, ByCorrelation)
	}
	if wf.ID == "" {
		return nil, errors.New("bundle: empty workflow id")
	}
	if (in.Log == nil) != (in.Checkpoint == nil) {
		return nil, errors.New("bundle: an audit log needs its checkpoint, and a checkpoint its log")
	}
	if wf.Kind == ByCorrelation && in.Log == nil {
		return nil, errors.New("bundle: selecting by correlation id needs the audit log")
	}
	var cp audit.Checkpoint
	if in.Log != nil {
		var err error
		if cp, err = logCheckpoint(in.Log, in.Checkpoint); err != nil {
			return nil, err
		}
	}
	var correlated map[string]bool
	if wf.Kind == ByCorrelation {
		correlated = map[string]bool{}
		for i := range cp.Size {
			if rec := in.Log.Record(i); rec.CorrelationID == wf.ID {
				if id, ok := rec.Payload["packet_id"].(string); ok {
					correlated[id] = true
				}
			}
		}
	}

	// The workflow's handoffs, one per packet.
	byID := map[string]*candidate{}
	var order []string
	for i, raw := range in.Envelopes {
		env, err := packet.ParseEnvelope(raw, in.Limits)
		if err != nil {
			return nil, fmt.Errorf("bundle: envelope %d: %w", i+1, err)
		}
		p := env.Packet
		if wf.Kind == ByTaskID && p.TaskID != wf.ID || wf.Kind == ByCorrelation && !correlated[p.PacketID] {
			continue
		}
		c := &candidate{env: env, raw: raw}
		for _, rule := range []packet.Rule{packet.Rule04, packet.Rule033} {
			if d, err := approval.Digest(p, rule); err == nil {
				c.digests = append(c.digests, d)
			}
		}
		prev, seen := byID[p.PacketID]
		switch {
		case !seen:
			order = append(order, p.PacketID)
			byID[p.PacketID] = c
		case len(env.Approvals) > len(prev.env.Approvals):
			byID[p.PacketID] = c
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w %s %q", ErrNoWorkflow, wf.Kind, wf.ID)
	}
	cands := make([]*candidate, len(order))
	for i, id := range order {
		cands[i] = byID[id]
	}
	if err := attachApprovals(cands, in.Approvals); err != nil {
		return nil, err
	}
	if err := matchReceipts(cands, in.Receipts); err != nil {
		return nil, err
	}
	for _, c := range cands {
		c.order = ^uint64(0)
		if in.Log != nil {
			if err := c.findAudit(in.Log, cp.Size); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		if a.order != b.order {
			return cmp.Compare(a.order, b.order)
		}
		return cmp.Compare(a.env.Packet.IssuedAt.Micros, b.env.Packet.IssuedAt.Micros)
	})

	b := &Bundle{Version: Version, Workflow: wf, CreatedAt: in.Now, Checkpoint: string(in.Checkpoint)}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now()
	}
	b.CreatedAt = b.CreatedAt.UTC().Truncate(time.Microsecond)
	if in.Registry != nil {
		if _, err := registry.Parse(in.Registry); err != nil {
			return nil, fmt.Errorf("bundle: registry snapshot: %w", err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Registry); err != nil {
			return nil, fmt.Errorf("bundle: registry snapshot: %w", err)
		}
		b.Registry = buf.Bytes()
	}
	for _, c := range cands {
		s := Step{Envelope: c.raw, Receipt: c.rcRaw, Audit: c.audit}
		if c.rc != nil {
			s.Outcome = findHashed(in.Outcomes, c.rc.OutcomeHash)
			if s.Outcome != nil && c.rc.ReasonHash != nil {
				s.Reason = findHashed(in.Reasons, *c.rc.ReasonHash)
				if s.Reason == nil {
					s.Outcome = nil // an outcome without its reason cannot be checked
				}
			}
		}
		b.Steps = append(b.Steps, s)
	}
	// What Create writes, Parse reads: a bundle that does not parse is never handed out.
	out, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := Parse(out, Limits{Envelope: in.Limits}); err != nil {
		return nil, err
	}
	return b, nil
}

// logCheckpoint parses the checkpoint note's body and checks that it is a checkpoint of
// log (its root is the log's root at its size). Its signature is Verify's to check.
func logCheckpoint(log *audit.Log, note []byte) (audit.Checkpoint, error) {
	i := bytes.Index(note, []byte("\n\n"))
	if i < 0 {
		return audit.Checkpoint{}, errors.New("bundle: the checkpoint is not a signed note")
	}
	cp, err := audit.ParseCheckpoint(note[:i+1])
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("bundle: %w", err)
	}
	if cp.Size > log.Size() {
		return audit.Checkpoint{}, fmt.Errorf("bundle: the checkpoint covers %d records, the log has %d", cp.Size, log.Size())
	}
	root, err := log.Root(cp.Size)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("bundle: %w", err)
	}
	if root != cp.Root {
		return audit.Checkpoint{}, errors.New("bundle: the checkpoint is not a checkpoint of this log (root differs)")
	}
	return cp, nil
}

// attachApprovals adds each separately delivered approval to the envelope it names.
func attachApprovals(cands []*candidate, approvals [][]byte) error {
	for i, raw := range approvals {
		v, err := canonical.Parse(raw, canonical.Limits{})
		if err != nil {
			return fmt.Errorf("bundle: approval %d: %w", i+1, err)
		}
		a, err := approval.FromValue(&v)
		if err != nil {
			return fmt.Errorf("bundle: approval %d: %w", i+1, err)
		}
		for _, c := range cands {
			if !c.names(a.PacketDigest) || c.hasApproval(a.ApprovalID) {
				continue
			}
			c.env.Approvals = append(c.env.Approvals, v)
			if c.raw, err = c.env.MarshalJSON(); err != nil {
				return fmt.Errorf("bundle: approval %d: %w", i+1, err)
			}
		}
	}
	return nil
}

func (c *candidate) names(hexDigest string) bool {
	for _, d := range c.digests {
		if fmt.Sprintf("%x", d) == hexDigest {
			return true
		}
	}
	return false
}

func (c *candidate) hasApproval(id string) bool {
	for i := range c.env.Approvals {
		if v, ok := c.env.Approvals[i].Get("approval_id"); ok && v.Kind == canonical.String && v.Str == id {
			return true
		}
	}
	return false
}

// matchReceipts gives each handoff the receipt bound to its packet digest.
func matchReceipts(cands []*candidate, receipts [][]byte) error {
	for i, raw := range receipts {
		r, err := receipt.Parse(raw)
		if err != nil {
			return fmt.Errorf("bundle: receipt %d: %w", i+1, err)
		}
		for _, c := range cands {
			if c.env.Packet.PacketID != r.PacketID || !slices.Contains(c.digests, r.PacketDigest) {
				continue
			}
			if c.rc != nil && c.rc.ReceiptID != r.ReceiptID {
				return fmt.Errorf("bundle: packet %s has two receipts (%s, %s)", truncate(r.PacketID), truncate(c.rc.ReceiptID), truncate(r.ReceiptID))
			}
			c.rc, c.rcRaw = r, raw
		}
	}
	return nil
}

// findAudit finds the handoff's packet_accepted record among the first size records of
// log (the first one not of a dry run: a dry run accepts nothing) and proves it.
func (c *candidate) findAudit(log *audit.Log, size uint64) error {
	p := c.env.Packet
	for i := range size {
		rec := log.Record(i)
		if rec.EventType != audit.PacketAccepted {
			continue
		}
		if id, _ := rec.Payload["packet_id"].(string); id != p.PacketID {
			continue
		}
		if nonce, _ := rec.Payload["nonce"].(string); nonce != p.Nonce {
			continue
		}
		if dry, _ := rec.Payload["dry_run"].(bool); dry {
			continue // a forensic re-verification, not the acceptance
		}
		proof, err := log.InclusionProof(i, size)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		e := AuditEntry{Index: i, Record: string(log.Line(i)), Proof: make([][32]byte, len(proof))}
		for k, h := range proof {
			e.Proof[k] = h
		}
		c.audit, c.order = append(c.audit, e), i
		return nil
	}
	return nil
}

// findHashed returns the item whose sha256 is h.
func findHashed(items [][]byte, h [32]byte) []byte {
	for _, it := range items {
		if receipt.HashBytes(it) == h {
			return it
		}
	}
	return nil
}
