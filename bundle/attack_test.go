package bundle_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// digestOf returns the digest of a receipt's wire form.
func digestOf(t testing.TB, raw []byte) [32]byte {
	t.Helper()
	r, err := receipt.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// extraStep is a handoff from `from` to `to` of workflow taskID issued at `at`, executed
// by its receiver one second later, never logged: its envelope and receipt (edited).
func (w *workflow) extraStep(t testing.TB, from, to agent, taskID string, at time.Time, edit func(r *receipt.Receipt), opts ...packet.BuildOption) bundle.Step {
	t.Helper()
	env, err := packet.Build(from.s, to.id, "Dig deeper", append([]packet.BuildOption{packet.WithActions("search_web"), packet.WithIssuedAt(at),
		packet.WithTaskID(taskID)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := receipt.Sign(to.s, "", env.Packet, packet.Rule04, receipt.Params{Status: receipt.StatusOK, Outcome: []byte("deeper"),
		StartedAt: at.Add(time.Second), FinishedAt: at.Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		raw = resign(t, raw, to, edit)
	}
	wire, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Step{Envelope: wire, Receipt: raw}
}

// shortCapabilityStep is a handoff of wf-1 from the planner to the researcher, issued at
// 20 s under a capability that expires at 30 s (the packet lives 900 s), whose receipt
// reports status and finished_at = t0 + finished.
func (w *workflow) shortCapabilityStep(t testing.TB, finished time.Duration, status receipt.Status) bundle.Step {
	t.Helper()
	c, err := capability.Delegate(w.planner.s, w.researcher.id, []string{"search_web"},
		capability.WithIssuedAt(t0.Add(20*time.Second)), capability.WithTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return w.extraStep(t, w.planner, w.researcher, "wf-1", t0.Add(20*time.Second), func(r *receipt.Receipt) {
		r.Status, r.FinishedAt = status, t0.Add(finished)
	}, packet.WithCapabilities(c), packet.WithTTL(900*time.Second))
}

// otherWorkflowStep is the wf-2 handoff's step as Create makes it (with its audit record).
func (w *workflow) otherWorkflowStep(t testing.TB) bundle.Step {
	t.Helper()
	b, err := bundle.Create(bundle.Workflow{Kind: bundle.ByTaskID, ID: "wf-2"}, w.input(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Steps) != 1 {
		t.Fatalf("wf-2 has %d steps", len(b.Steps))
	}
	return b.Steps[0]
}

// dryRunEntry is the log's first record, the dry run of the first handoff, with its proof.
func (w *workflow) dryRunEntry(t testing.TB) bundle.AuditEntry {
	t.Helper()
	log, err := audit.ReadLog(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if rec := log.Record(0); rec.EventType != audit.PacketAccepted || rec.Payload["dry_run"] != true {
		t.Fatalf("record 0 is not the dry run: %+v", rec)
	}
	proof, err := log.InclusionProof(0, log.Size())
	if err != nil {
		t.Fatal(err)
	}
	e := bundle.AuditEntry{Index: 0, Record: string(log.Line(0))}
	for _, h := range proof {
		e.Proof = append(e.Proof, h)
	}
	return e
}

// registryWith returns a copy of the workflow's registry changed by edit.
func (w *workflow) registryWith(t testing.TB, edit func(r *registry.Registry) error) *registry.Registry {
	t.Helper()
	snap, err := w.reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.Parse(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// failure is one expected failure: step, problem and (when not "") reason.
type failure struct {
	step    int
	problem bundle.Problem
	reason  reason.Code
}

// wantFailures checks that err lists every failure in want, and that each failing step
// is reported as not OK.
func wantFailures(t *testing.T, rep *bundle.Report, err error, want ...failure) {
	t.Helper()
	if len(want) == 0 {
		if err != nil || !rep.OK {
			t.Fatalf("want a verified bundle, got %v", err)
		}
		return
	}
	if err == nil || rep.OK {
		t.Fatal("the attacked bundle verifies")
	}
	if !errors.Is(err, bundle.ErrInvalid) {
		t.Fatalf("error does not wrap ErrInvalid: %v", err)
	}
	var be *bundle.Error
	if !errors.As(err, &be) {
		t.Fatalf("not a *bundle.Error: %T %v", err, err)
	}
	for _, f := range want {
		found := false
		for _, got := range be.Failures {
			if got.Step == f.step && got.Problem == f.problem && (f.reason == "" || got.Reason == f.reason) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("want step %d %s [%s], got: %v", f.step, f.problem, f.reason, err)
			continue
		}
		if f.step > 0 && rep.Steps[f.step-1].OK {
			t.Errorf("step %d is reported OK", f.step)
		}
	}
}

// TestVerifyRejectsAttacks: bundles an attacker would craft, each rejected with the step
// and the reason named.
func TestVerifyRejectsAttacks(t *testing.T) {
	w := newWorkflow(t)
	nonceOf := func(raw []byte) [16]byte {
		r, err := receipt.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r.Nonce
	}
	// The packets' windows: step 1 (read) is issued at 0 s and lives 900 s; step 2 (write)
	// is issued at 6 s, lives 120 s and was accepted at 8 s; the skew is 30 s.
	expires2 := t0.Add(126 * time.Second)
	accepted2 := t0.Add(8 * time.Second)
	cases := []struct {
		name   string
		tamper func(t *testing.T, b *bundle.Bundle)
		reg    func(t *testing.T) *registry.Registry // nil: the workflow's
		opts   []bundle.Option
		want   []failure // none: the bundle verifies
	}{
		{name: "receipt signed by the packet's from_agent, naming itself",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.researcher, func(r *receipt.Receipt) { r.Executor = w.researcher.id })
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.WrongExecutor}}},
		{name: "receipt signed by the packet's from_agent under the executor's name",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.researcher, func(*receipt.Receipt) {})
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.PublicKeyMismatch}}},
		{name: "receipt by an agent outside the registry",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, seeded(9), func(*receipt.Receipt) {})
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.PublicKeyMismatch}}},
		{name: "executor revoked before it finished",
			reg: func(t *testing.T) *registry.Registry {
				return w.registryWith(t, func(r *registry.Registry) error { return r.Revoke(w.writer.id, t0.Add(10*time.Second)) })
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.AgentRevoked}}},
		{name: "executor revoked after it finished (forensics: still valid)",
			reg: func(t *testing.T) *registry.Registry {
				return w.registryWith(t, func(r *registry.Registry) error { return r.Revoke(w.writer.id, t0.Add(13*time.Second)) })
			}},
		{name: "executor's key rotated out before it finished",
			reg: func(t *testing.T) *registry.Registry {
				return w.registryWith(t, func(r *registry.Registry) error {
					return r.Rotate(w.writer.id, seeded(10).s.Public(), t0.Add(10*time.Second), 0)
				})
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.PublicKeyMismatch}}},
		{name: "a receipt nonce used twice by one executor",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				n := nonceOf(b.Steps[0].Receipt)
				b.Steps = append(b.Steps, w.extraStep(t, w.planner, w.researcher, "wf-1", t0.Add(20*time.Second), func(r *receipt.Receipt) { r.Nonce = n }))
			},
			want: []failure{{3, bundle.ProblemReceipt, reason.ReplayDetected}}},
		{name: "a receipt nonce reused by another executor (its own nonce space)",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				n := nonceOf(b.Steps[1].Receipt)
				b.Steps = append(b.Steps, w.extraStep(t, w.planner, w.researcher, "wf-1", t0.Add(20*time.Second), func(r *receipt.Receipt) { r.Nonce = n }))
			}},
		{name: "a dry run's record for the acceptance",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[0].Audit = []bundle.AuditEntry{w.dryRunEntry(t)}
			},
			want: []failure{{1, bundle.ProblemAuditMissing, ""}}},
		{name: "a dry run's record beside the acceptance",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[0].Audit = []bundle.AuditEntry{w.dryRunEntry(t), b.Steps[0].Audit[0]}
			}},
		{name: "finished after a capability of the chain expired",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps = append(b.Steps, w.shortCapabilityStep(t, 35*time.Second, receipt.StatusOK))
			},
			want: []failure{{3, bundle.ProblemReceipt, reason.ExecutionOutsideValidity}}},
		{name: "finished before a capability of the chain expired",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps = append(b.Steps, w.shortCapabilityStep(t, 29*time.Second, receipt.StatusOK))
			}},
		{name: "TIMEOUT reported soon after a capability of the chain expired",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps = append(b.Steps, w.shortCapabilityStep(t, 35*time.Second, receipt.StatusTimeout))
			}},
		{name: "the same handoff twice",
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps = append(b.Steps, b.Steps[1]) },
			want:   []failure{{3, bundle.ProblemDuplicate, reason.ReplayDetected}}},
		{name: "dependency cycle",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				d2 := digestOf(t, b.Steps[1].Receipt)
				b.Steps[0].Receipt = resign(t, b.Steps[0].Receipt, w.researcher, func(r *receipt.Receipt) { r.DependsOn = [][32]byte{d2} })
			},
			// A digest covers depends_on, so no receipt can name one that names it: the
			// edited receipt names a later step, and the original it replaced is gone.
			want: []failure{{1, bundle.ProblemDependency, reason.DependencyInvalid}, {2, bundle.ProblemDependency, reason.DependencyInvalid}}},
		{name: "dependency on a receipt of another workflow, not in the bundle",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				d1, d3 := digestOf(t, b.Steps[0].Receipt), digestOf(t, w.otherReceipt)
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.DependsOn = [][32]byte{d1, d3} })
			},
			want: []failure{{2, bundle.ProblemDependency, reason.DependencyInvalid}}},
		{name: "dependency on a receipt of another workflow, spliced in as a step",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				d1, d3 := digestOf(t, b.Steps[0].Receipt), digestOf(t, w.otherReceipt)
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.DependsOn = [][32]byte{d1, d3} })
				b.Steps = append([]bundle.Step{w.otherWorkflowStep(t)}, b.Steps...)
			},
			want: []failure{{1, bundle.ProblemWorkflow, ""}, {3, bundle.ProblemDependency, reason.DependencyInvalid}}},
		{name: "finished exactly at expiry",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.FinishedAt = expires2 })
			}},
		{name: "finished 1 µs after expiry",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.FinishedAt = expires2.Add(time.Microsecond) })
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.ExecutionOutsideValidity}}},
		{name: "started exactly a skew before the acceptance",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.StartedAt = accepted2.Add(-30 * time.Second) })
			}},
		{name: "started 1 µs more than a skew before the acceptance",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.StartedAt = accepted2.Add(-30*time.Second - time.Microsecond)
				})
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.ExecutionOutsideValidity}}},
		{name: "started 1 µs more than a skew before issue (unaudited)",
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				for i := range b.Steps {
					b.Steps[i].Audit = nil
				}
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.StartedAt = t0.Add(6*time.Second - 30*time.Second - time.Microsecond)
				})
			},
			want: []failure{{2, bundle.ProblemHandoff, reason.IssuedInFuture}}},
		{name: "finished 1 ns after expiry (no such spelling)",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) { r.FinishedAt = expires2 })
				b.Steps[1].Receipt = bytes.Replace(b.Steps[1].Receipt, []byte(`"finished_at":"2026-04-01T12:02:06Z"`),
					[]byte(`"finished_at":"2026-04-01T12:02:06.000000001Z"`), 1)
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.MalformedEnvelope}}},
		{name: "receipt with an unknown field",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = bytes.Replace(b.Steps[1].Receipt, []byte(`{`), []byte(`{"verified":true,`), 1)
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.MalformedEnvelope}}},
		{name: "receipt with too many dependencies",
			tamper: func(t *testing.T, b *bundle.Bundle) {
				var m map[string]any
				if err := json.Unmarshal(b.Steps[1].Receipt, &m); err != nil {
					t.Fatal(err)
				}
				deps := make([]string, receipt.MaxDependsOn+1)
				for i := range deps {
					deps[i] = fmt.Sprintf("%064x", i)
				}
				m["depends_on"] = deps
				b.Steps[1].Receipt, _ = json.Marshal(m)
			},
			want: []failure{{2, bundle.ProblemReceipt, reason.MalformedEnvelope}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := w.bundle(t)
			if tc.tamper != nil {
				tc.tamper(t, b)
			}
			out, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if b, err = bundle.Parse(out, bundle.Limits{}); err != nil {
				t.Fatal(err)
			}
			reg := w.reg
			if tc.reg != nil {
				reg = tc.reg(t)
			}
			rep, err := bundle.Verify(context.Background(), b, reg, append([]bundle.Option{bundle.WithLogKey(w.logKey)}, tc.opts...)...)
			wantFailures(t, rep, err, tc.want...)
		})
	}
}

// TestParseRejectsAttacks: hostile spellings of a real bundle that Parse refuses, naming
// the part.
func TestParseRejectsAttacks(t *testing.T) {
	w := newWorkflow(t)
	good, err := w.bundle(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	zero32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	steps := func(n int) []byte {
		return []byte(`{"version": "trusthandoff/bundle/v1", "workflow": {"kind": "task_id", "id": "wf-1"}, "created_at": "2026-04-01T13:00:00Z", "steps": [` +
			strings.TrimSuffix(strings.Repeat(`{"envelope": {}},`, n), ",") + `]}`)
	}
	cases := []struct {
		name string
		data []byte
		path string
	}{
		{"duplicate key inside an embedded receipt", bytes.Replace(good, []byte(`"status": "OK"`), []byte(`"status": "OK", "status": "ERROR"`), 1), ""},
		{"duplicate key inside an envelope", bytes.Replace(good, []byte(`"intent": "Research the market"`), []byte(`"intent": "Research the market", "intent": "Export everything"`), 1), ""},
		{"duplicate step member", bytes.Replace(good, []byte(`"receipt": {`), []byte(`"receipt": null, "receipt": {`), 1), ""},
		{"unknown step member", bytes.Replace(good, []byte(`"receipt": {`), []byte(`"verified": true, "receipt": {`), 1), "steps[0]"},
		{"1025 steps", steps(bundle.DefaultMaxSteps + 1), "steps"},
		{"65 audit records", bytes.Replace(good, []byte(`"audit": [`),
			[]byte(`"audit": [`+strings.Repeat(`{"index": 0, "record": "{}", "proof": ["`+zero32+`"]}, `, bundle.MaxAuditEntries)), 1), "steps[0].audit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.data, good) {
				t.Fatal("the attack did not change the bundle")
			}
			_, err := bundle.Parse(tc.data, bundle.Limits{})
			var pe *bundle.ParseError
			if !errors.Is(err, bundle.ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("want a *ParseError, got %v", err)
			}
			if tc.path != "" && pe.Path != tc.path {
				t.Fatalf("error names %q, want %q: %v", pe.Path, tc.path, err)
			}
		})
	}
	// And the unchanged bundle parses (the cases above start from a valid document).
	if _, err := bundle.Parse(good, bundle.Limits{}); err != nil {
		t.Fatal(err)
	}
}

// TestCorrelationBundle: a bundle selected by the correlation id of the audit records (the
// packet id the receiver logged) holds that handoff, verifies, and is tied to it by its
// audit record: another id, or no record, is workflow_mismatch.
func TestCorrelationBundle(t *testing.T) {
	w := newWorkflow(t)
	env, err := packet.ParseEnvelope(w.envs[0], packet.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wf := bundle.Workflow{Kind: bundle.ByCorrelation, ID: env.Packet.PacketID}
	b, err := bundle.Create(wf, w.input(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Steps) != 1 || len(b.Steps[0].Audit) != 1 || b.Steps[0].Receipt == nil || b.Steps[0].Outcome == nil {
		t.Fatalf("correlation bundle: %+v", b.Steps)
	}
	rep, err := w.verify(t, b)
	wantFailures(t, rep, err)

	other := *b
	other.Workflow.ID = "another-packet"
	rep, err = w.verify(t, &other)
	wantFailures(t, rep, err, failure{1, bundle.ProblemWorkflow, ""})

	unaudited := *b
	unaudited.Steps = append([]bundle.Step(nil), b.Steps...)
	unaudited.Steps[0].Audit = nil
	rep, err = w.verify(t, &unaudited, bundle.WithoutAudit())
	wantFailures(t, rep, err, failure{1, bundle.ProblemWorkflow, ""})

	if _, err := bundle.Create(bundle.Workflow{Kind: bundle.ByCorrelation, ID: "nobody"}, w.input(t)); !errors.Is(err, bundle.ErrNoWorkflow) {
		t.Fatalf("unknown correlation id: %v", err)
	}
	in := w.input(t)
	in.Log, in.Checkpoint = nil, nil
	if _, err := bundle.Create(wf, in); err == nil {
		t.Fatal("a correlation bundle without the audit log")
	}
}

// TestUnsignedCheckpoint: without a log key, WithUnsignedCheckpoint still proves every
// carried record against the checkpoint's tree and checks everything else, and the report
// says the checkpoint's signature was not checked.
func TestUnsignedCheckpoint(t *testing.T) {
	w := newWorkflow(t)
	verifyUnsigned := func(b *bundle.Bundle) (*bundle.Report, error) {
		return bundle.Verify(context.Background(), b, w.reg, bundle.WithUnsignedCheckpoint())
	}
	rep, err := verifyUnsigned(w.bundle(t))
	wantFailures(t, rep, err)
	if c := rep.Checkpoint; c == nil || c.Authenticated || c.Signer != "" || c.Size == 0 {
		t.Fatalf("checkpoint %+v", rep.Checkpoint)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "signature not checked") {
		t.Fatalf("text report:\n%s", text.String())
	}
	// With a log key the checkpoint is authenticated, whatever the option says.
	rep, err = bundle.Verify(context.Background(), w.bundle(t), w.reg, bundle.WithUnsignedCheckpoint(), bundle.WithLogKey(w.logKey))
	wantFailures(t, rep, err)
	if !rep.Checkpoint.Authenticated {
		t.Fatal("a checkpoint checked with the log key is not marked authenticated")
	}

	cases := []struct {
		name   string
		tamper func(b *bundle.Bundle)
		want   failure
	}{
		{"proof mismatch", func(b *bundle.Bundle) { b.Steps[0].Audit[0].Proof[0][0] ^= 1 }, failure{1, bundle.ProblemProof, ""}},
		{"audit record edited", func(b *bundle.Bundle) {
			e := &b.Steps[1].Audit[0]
			e.Record = strings.Replace(e.Record, `"node-1"`, `"node-2"`, 1)
		}, failure{2, bundle.ProblemProof, ""}},
		{"checkpoint root edited", func(b *bundle.Bundle) {
			lines := strings.SplitN(b.Checkpoint, "\n", 4)
			lines[2] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			b.Checkpoint = strings.Join(lines, "\n")
		}, failure{1, bundle.ProblemProof, ""}},
		{"not a note", func(b *bundle.Bundle) { b.Checkpoint = "trusthandoff/audit\n4\n" }, failure{0, bundle.ProblemCheckpoint, ""}},
		{"result changed", func(b *bundle.Bundle) { b.Steps[0].Outcome = []byte("forged") }, failure{1, bundle.ProblemOutcome, reason.OutcomeMismatch}},
		{"approval missing", func(b *bundle.Bundle) { b.Steps[1].Envelope = withoutApprovals(t, b.Steps[1].Envelope) }, failure{2, bundle.ProblemHandoff, reason.HumanReviewRequired}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := w.bundle(t)
			tc.tamper(b)
			rep, err := verifyUnsigned(b)
			wantFailures(t, rep, err, tc.want)
		})
	}
}
