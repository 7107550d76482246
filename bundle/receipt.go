package bundle

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// stepReceipt is a step's parsed receipt with what checking its dependencies needs.
type stepReceipt struct {
	r      *receipt.Receipt
	env    *packet.Envelope
	digest [32]byte
}

func (rc *stepReceipt) startedAt() time.Time { return rc.r.StartedAt }

// parseStepReceipt parses a step's receipt JSON (nil, nil when the step has none).
func parseStepReceipt(raw []byte) (*stepReceipt, error) {
	if raw == nil {
		return nil, nil
	}
	r, err := receipt.Parse(raw)
	if err != nil {
		return nil, err
	}
	d, err := r.Digest()
	if err != nil {
		return nil, err
	}
	return &stepReceipt{r: r, digest: d}, nil
}

func packetDigest(p *packet.Packet, rule packet.Rule) (string, error) {
	d, err := approval.Digest(p, rule)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(d[:]), nil
}

// checkReceipt verifies a step's receipt against its verified envelope, as of the
// receipt's finished_at (when it was delivered), with the carried outcome.
func (w *walker) checkReceipt(ctx context.Context, rc *stepReceipt, env *packet.Envelope, d *verify.Decision, s *Step, sr *StepReport) error {
	rc.env = env
	r := rc.r
	sr.Executor, sr.Status, sr.ReceiptID = r.Executor, string(r.Status), r.ReceiptID
	if w.rv == nil {
		opts := []receipt.Option{}
		tp := w.v.TimePolicy()
		opts = append(opts, receipt.WithSkew(tp.Skew), receipt.WithGrace(tp.Grace))
		rv, err := receipt.NewVerifier(w.reg, opts...)
		if err != nil {
			return &StepError{Problem: ProblemReceipt, Msg: "receipt verifier", Err: err}
		}
		w.rv = rv
	}
	opt := receipt.VerifyOptions{At: r.FinishedAt, DryRun: true, Dependencies: w.resolve}
	if s.Outcome != nil {
		opt.Outcome, opt.Reason = s.Outcome, s.Reason
	}
	err := w.rv.Verify(ctx, r, env, opt)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, receipt.ErrDependency):
		return &StepError{Problem: ProblemDependency, Reason: reason.Of(err, ""), Err: err}
	case errors.Is(err, receipt.ErrOutcomeMismatch):
		return &StepError{Problem: ProblemOutcome, Reason: reason.Of(err, ""), Err: err}
	}
	return &StepError{Problem: ProblemReceipt, Reason: reason.Of(err, ""), Err: err}
}

// resolve finds a depends_on receipt among the bundle's steps.
func (w *walker) resolve(digest [32]byte) (*receipt.Receipt, *packet.Envelope, bool) {
	w.index()
	i, ok := w.byDigest[digest]
	if !ok {
		return nil, nil, false
	}
	rc := w.parsed[i]
	return rc.r, rc.env, rc.env != nil
}

// index parses every step's receipt and envelope once, for resolve.
func (w *walker) index() {
	if w.byDigest != nil {
		return
	}
	w.byDigest = map[[32]byte]int{}
	w.parsed = make([]*stepReceipt, len(w.b.Steps))
	for i := range w.b.Steps {
		s := &w.b.Steps[i]
		rc, err := parseStepReceipt(s.Receipt)
		if err != nil || rc == nil {
			continue
		}
		if rc.env, err = packet.ParseEnvelope(s.Envelope, w.cfg.limits.Envelope); err != nil {
			continue
		}
		if _, dup := w.byDigest[rc.digest]; !dup {
			w.byDigest[rc.digest] = i
			w.parsed[i] = rc
		}
	}
}

// dependencies checks, after every step, that each depends_on of a verified receipt names
// the receipt of an earlier step that verified as a whole (authorised, approved, executed
// by its delegate): a result may only build on proven results.
func (w *walker) dependencies() {
	w.index()
	failed := map[int]bool{}
	for _, f := range w.rep.Failures {
		failed[f.Step] = true
	}
	for i, rc := range w.receipts {
		if rc == nil {
			continue
		}
		sr := &w.rep.Steps[i]
		for _, dep := range rc.r.DependsOn {
			j, ok := w.byDigest[dep]
			var msg string
			switch {
			case !ok:
				msg = "names a receipt that is not in the bundle"
			case j >= i:
				msg = fmt.Sprintf("names the receipt of step %d, which is not an earlier step", j+1)
			case failed[j+1] || w.receipts[j] == nil:
				msg = fmt.Sprintf("names the receipt of step %d, which does not verify", j+1)
			}
			if msg != "" {
				w.fail(&StepError{Step: i + 1, PacketID: sr.PacketID, Problem: ProblemDependency, Reason: reason.DependencyInvalid,
					Msg: "depends_on " + hex.EncodeToString(dep[:8]) + "… " + msg})
				break
			}
			sr.DependsOn = append(sr.DependsOn, j+1)
		}
	}
}
