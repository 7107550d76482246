package bundle_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// t0 is when the workflow starts.
var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

type agent struct {
	s  *identity.KeySigner
	id string
}

func seeded(seed byte) agent {
	s := identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	return agent{s, identity.AgentIDOf(s.Public())}
}

// workflow is a three-agent workflow that ran through the library's executor loop
// (receipt.Run: each receiver's gate verifies the handoff into one audit log, runs the
// task under revalidation and signs the receipt): the planner hands research to the
// researcher under a capability; the researcher derives a narrower capability and hands
// the report to the writer, which needs (and gets) a reviewer's approval; the writer's
// receipt depends on the researcher's. The planner also hands the writer a task of
// another workflow (wf-2), logged in the same audit log.
type workflow struct {
	planner, researcher, writer, reviewer agent
	reg                                   *registry.Registry
	logPath                               string
	logKey                                string // the log's note verifier key
	envs                                  [][]byte
	approvals                             [][]byte // delivered apart from the second envelope
	receipts                              [][]byte
	outcomes                              [][]byte
	root, leaf                            *capability.Capability
	// other is the wf-2 handoff to the writer: its envelope, receipt and outcome.
	otherEnv, otherReceipt, otherOutcome []byte
}

// clock is the workflow's shared, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func newWorkflow(t testing.TB) *workflow {
	t.Helper()
	w := &workflow{planner: seeded(1), researcher: seeded(2), writer: seeded(3), reviewer: seeded(4)}
	w.reg = registry.New()
	for _, a := range []agent{w.planner, w.researcher, w.writer} {
		if _, err := w.reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.reg.Add("", w.reviewer.s.Public(), []string{registry.RoleApprover}, nil); err != nil {
		t.Fatal(err)
	}
	w.logPath = filepath.Join(t.TempDir(), "audit.log")
	sink, err := audit.OpenFile(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	revoked := revocation.NewMemory(revocation.MemoryConfig{})
	// run is one executor's whole loop: its gate (bound to it, auditing into the log)
	// verifies the envelope, the task runs (taking `took`), and Run signs the receipt.
	run := func(as agent, env *packet.Envelope, at time.Time, took time.Duration, outcome []byte, deps ...[32]byte) *receipt.Receipt {
		t.Helper()
		v, err := verify.New(w.reg, replay.NewMemory(replay.MemoryConfig{Now: clk.Now}), verify.WithClock(clk.Now),
			verify.WithRecipient(as.id), verify.WithRevocations(revoked), verify.WithAudit(sink, "node-1"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := gate.New(v, revoked, gate.WithLivenessProbe(0))
		if err != nil {
			t.Fatal(err)
		}
		wire, err := env.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(at)
		res, r, err := receipt.Run(context.Background(), g, as.s, wire, func(context.Context, *verify.Decision) ([]byte, error) {
			clk.Set(clk.Now().Add(took))
			return outcome, nil
		}, receipt.WithExecutor(as.id), receipt.WithRunClock(clk.Now), receipt.WithDependsOn(deps...))
		if err != nil || res.Status != receipt.StatusOK {
			t.Fatalf("Run: %v (status %s)", err, res.Status)
		}
		return r
	}

	// 1. planner -> researcher, under a root capability; accepted at 1 s, done at 4 s.
	w.root, err = capability.Delegate(w.planner.s, w.researcher.id, []string{"search_web", "write_report"},
		capability.WithIssuedAt(t0), capability.WithTTL(time.Hour), capability.WithMaxToolCalls(20))
	if err != nil {
		t.Fatal(err)
	}
	env1, err := packet.Build(w.planner.s, w.researcher.id, "Research the market", packet.WithCapabilities(w.root),
		packet.WithActions("search_web"), packet.WithIssuedAt(t0), packet.WithTaskID("wf-1"))
	if err != nil {
		t.Fatal(err)
	}
	// A forensic dry run of it, logged before it was delivered, as of a later instant: a
	// dry run accepts nothing, so no bundle may take its record for the acceptance.
	dry, err := verify.New(w.reg, replay.NewMemory(replay.MemoryConfig{Now: clk.Now}), verify.WithClock(clk.Now),
		verify.WithRevocations(revoked), verify.WithAudit(sink, "node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := dry.VerifyRequest(context.Background(), nil, verify.Request{At: t0.Add(10 * time.Minute), DryRun: true, Envelope: env1,
		Recipient: w.researcher.id}); !d.Accepted() {
		t.Fatalf("dry run: %s %s", d.Reason, d.Detail)
	}
	findings := []byte(`{"findings":["a","b"]}`)
	r1 := run(w.researcher, env1, t0.Add(time.Second), 3*time.Second, findings)
	r1Digest, err := r1.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// 2. researcher -> writer, under a narrower derived capability, reviewed by a human;
	// accepted at 8 s, done at 12 s.
	w.leaf, err = capability.Delegate(w.researcher.s, w.writer.id, []string{"write_report"},
		capability.WithParent(w.root), capability.WithIssuedAt(t0.Add(6*time.Second)), capability.WithTTL(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	env2, err := packet.Build(w.researcher.s, w.writer.id, "Write the report", packet.WithCapabilities(w.root, w.leaf),
		packet.WithActions("write_report"), packet.WithConstraints(packet.Constraints{RequiresHumanReview: true}),
		packet.WithIssuedAt(t0.Add(6*time.Second)), packet.WithTaskID("wf-1"))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := approval.Digest(env2.Packet, packet.Rule04)
	if err != nil {
		t.Fatal(err)
	}
	a, err := approval.New(w.reviewer.s, digest, approval.Approve, t0.Add(7*time.Second), 10*time.Minute, "looks right")
	if err != nil {
		t.Fatal(err)
	}
	av := a.Value()
	aJSON, err := canonical.Marshal(&av, canonical.Wire())
	if err != nil {
		t.Fatal(err)
	}
	w.approvals = [][]byte{aJSON}
	bare, err := env2.MarshalJSON() // as first sent: without the approval
	if err != nil {
		t.Fatal(err)
	}
	approved := *env2
	approved.Approvals = []canonical.Value{av}
	report := []byte(`{"report":"..."}`)
	r2 := run(w.writer, &approved, t0.Add(8*time.Second), 4*time.Second, report, r1Digest)

	// Another workflow's handoff to the writer, in the same log: accepted at 20 s.
	env3, err := packet.Build(w.planner.s, w.writer.id, "Unrelated", packet.WithActions("search_web"),
		packet.WithIssuedAt(t0.Add(19*time.Second)), packet.WithTaskID("wf-2"))
	if err != nil {
		t.Fatal(err)
	}
	w.otherOutcome = []byte(`{"other":true}`)
	r3 := run(w.writer, env3, t0.Add(20*time.Second), time.Second, w.otherOutcome)
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	key, err := audit.LoadKey(w.logPath + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if w.logKey, err = audit.VerifierKey(key); err != nil {
		t.Fatal(err)
	}
	e1, _ := env1.MarshalJSON()
	w.envs = [][]byte{e1, bare}
	for _, r := range []*receipt.Receipt{r1, r2} {
		raw, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		w.receipts = append(w.receipts, raw)
	}
	w.outcomes = [][]byte{findings, report}
	if w.otherEnv, err = env3.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
	if w.otherReceipt, err = r3.Marshal(); err != nil {
		t.Fatal(err)
	}
	return w
}

// input is what Create gets: the objects, in no particular order, plus the log.
func (w *workflow) input(t testing.TB) bundle.Input {
	t.Helper()
	log, err := audit.ReadLog(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(audit.CheckpointPath(w.logPath))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := w.reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Input{
		Envelopes: [][]byte{w.envs[1], w.otherEnv, w.envs[0]}, Approvals: w.approvals,
		Receipts: [][]byte{w.receipts[1], w.otherReceipt, w.receipts[0]}, Outcomes: append([][]byte{w.otherOutcome}, w.outcomes...),
		Log: log, Checkpoint: cp, Registry: snap, Now: t0.Add(time.Hour),
	}
}

func (w *workflow) bundle(t testing.TB) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Create(bundle.Workflow{Kind: bundle.ByTaskID, ID: "wf-1"}, w.input(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every bundle under test went through its wire form.
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err = bundle.Parse(out, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *workflow) verify(t testing.TB, b *bundle.Bundle, opts ...bundle.Option) (*bundle.Report, error) {
	t.Helper()
	return bundle.Verify(context.Background(), b, w.reg, append([]bundle.Option{bundle.WithLogKey(w.logKey)}, opts...)...)
}

func TestWorkflowBundleVerifies(t *testing.T) {
	w := newWorkflow(t)
	b := w.bundle(t)
	if len(b.Steps) != 2 {
		t.Fatalf("%d steps", len(b.Steps))
	}
	rep, err := w.verify(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Checkpoint == nil || rep.Checkpoint.Size == 0 {
		t.Fatalf("report %+v", rep)
	}
	want := []struct {
		from, to, executor string
		approvals          int
		deps               []int
	}{
		{w.planner.id, w.researcher.id, w.researcher.id, 0, nil},
		{w.researcher.id, w.writer.id, w.writer.id, 1, []int{1}},
	}
	for i, s := range rep.Steps {
		wt := want[i]
		if !s.OK || s.From != wt.from || s.To != wt.to || s.Executor != wt.executor || s.Approvals != wt.approvals ||
			len(s.DependsOn) != len(wt.deps) || s.AtSource != "audit" || s.Decision != verify.Accept || len(s.AuditSeq) != 1 {
			t.Fatalf("step %d: %+v", i+1, s)
		}
	}
	if rep.Steps[0].At != t0.Add(time.Second) || rep.Steps[1].At != t0.Add(8*time.Second) {
		t.Fatalf("steps verified at %v, %v (want the logged acceptance times)", rep.Steps[0].At, rep.Steps[1].At)
	}
	if got := len(rep.Steps[1].Capability); got != 2 {
		t.Fatalf("step 2 capability chain of %d links", got)
	}
}

func TestVerifyWithBundleRegistry(t *testing.T) {
	w := newWorkflow(t)
	b := w.bundle(t)
	if _, err := bundle.Verify(context.Background(), b, nil, bundle.WithLogKey(w.logKey)); !isProblem(err, 0, bundle.ProblemRegistry) {
		t.Fatalf("nil registry without WithBundleRegistry: %v", err)
	}
	if _, err := bundle.Verify(context.Background(), b, nil, bundle.WithLogKey(w.logKey), bundle.WithBundleRegistry()); err != nil {
		t.Fatalf("with the bundle's snapshot: %v", err)
	}
}

// isProblem reports whether err holds a *StepError of step with problem.
func isProblem(err error, step int, p bundle.Problem) bool {
	var be *bundle.Error
	if !errors.As(err, &be) {
		return false
	}
	for _, f := range be.Failures {
		if f.Step == step && f.Problem == p {
			return true
		}
	}
	return false
}

// resign re-signs a receipt after edit (as a forger holding signer's key would).
func resign(t testing.TB, raw []byte, signer agent, edit func(r *receipt.Receipt)) []byte {
	t.Helper()
	r, err := receipt.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit(r)
	r.PublicKey = identity.PublicKeyPEM(signer.s.Public())
	msg, err := r.SigningBytes()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := signer.s.Sign(msg)
	r.Signature = [64]byte(sig)
	out, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutApprovals returns the envelope JSON with its approvals removed.
func withoutApprovals(t testing.TB, raw []byte) []byte {
	t.Helper()
	env, err := packet.ParseEnvelope(raw, packet.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	env.Approvals = nil
	out, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyDetectsTampering(t *testing.T) {
	w := newWorkflow(t)
	cases := []struct {
		name    string
		tamper  func(t *testing.T, b *bundle.Bundle)
		opts    []bundle.Option
		step    int
		problem bundle.Problem
		reason  reason.Code
	}{
		{name: "missing receipt", step: 2, problem: bundle.ProblemReceiptMissing,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[1].Receipt = nil }},
		{name: "receipt by the wrong agent", step: 1, problem: bundle.ProblemReceipt, reason: reason.WrongExecutor,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[0].Receipt = resign(t, b.Steps[0].Receipt, w.writer, func(r *receipt.Receipt) { r.Executor = w.writer.id })
			}},
		{name: "receipt of another packet", step: 1, problem: bundle.ProblemReceipt, reason: reason.ReceiptPacketMismatch,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0].Receipt = b.Steps[1].Receipt }},
		{name: "result changed", step: 1, problem: bundle.ProblemOutcome, reason: reason.OutcomeMismatch,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0].Outcome = []byte(`{"findings":["forged"]}`) }},
		{name: "receipt's outcome hash changed", step: 1, problem: bundle.ProblemReceipt, reason: reason.InvalidSignature,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				r, _ := receipt.Parse(b.Steps[0].Receipt)
				r.OutcomeHash = receipt.HashBytes([]byte("forged"))
				b.Steps[0].Receipt, _ = r.Marshal()
				b.Steps[0].Outcome = []byte("forged")
			}},
		{name: "execution after the packet expired", step: 2, problem: bundle.ProblemReceipt, reason: reason.ExecutionOutsideValidity,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.FinishedAt = t0.Add(10 * time.Minute)
				})
				b.Steps[1].Outcome = nil
			}},
		{name: "execution before the packet was issued", step: 2, problem: bundle.ProblemReceipt, reason: reason.ExecutionOutsideValidity,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.StartedAt = t0.Add(-time.Minute)
				})
			}},
		{name: "handoff used after it expired (unaudited)", step: 2, problem: bundle.ProblemHandoff, reason: reason.Expired,
			opts: []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Checkpoint = ""
				for i := range b.Steps {
					b.Steps[i].Audit = nil
				}
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.StartedAt, r.FinishedAt = t0.Add(9*time.Minute), t0.Add(10*time.Minute)
				})
			}},
		{name: "execution before the handoff was accepted", step: 2, problem: bundle.ProblemReceipt, reason: reason.ExecutionOutsideValidity,
			opts: []bundle.Option{bundle.WithVerifierOptions(verify.WithSkew(0))},
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.StartedAt = t0.Add(7 * time.Second) // issued at 6 s, accepted at 8 s
				})
			}},
		{name: "approval missing", step: 2, problem: bundle.ProblemHandoff, reason: reason.HumanReviewRequired,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[1].Envelope = withoutApprovals(t, b.Steps[1].Envelope) }},
		{name: "dependency not in the bundle", step: 2, problem: bundle.ProblemDependency, reason: reason.DependencyInvalid,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Steps[1].Receipt = resign(t, b.Steps[1].Receipt, w.writer, func(r *receipt.Receipt) {
					r.DependsOn = [][32]byte{{1, 2, 3}}
				})
				b.Steps[1].Outcome = nil
			}},
		{name: "dependency's step removed", step: 1, problem: bundle.ProblemDependency,
			opts:   []bundle.Option{bundle.WithoutAudit()},
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps = b.Steps[1:] }},
		{name: "dependency on a later step", step: 1, problem: bundle.ProblemDependency,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0], b.Steps[1] = b.Steps[1], b.Steps[0] }},
		{name: "dependency on a failed step", step: 2, problem: bundle.ProblemDependency,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0].Outcome = []byte("changed") }},
		{name: "checkpoint by another key", step: 0, problem: bundle.ProblemCheckpoint,
			opts:   []bundle.Option{bundle.WithLogKey(otherLogKey(t))},
			tamper: func(t *testing.T, b *bundle.Bundle) {}},
		{name: "checkpoint edited", step: 0, problem: bundle.ProblemCheckpoint,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				b.Checkpoint = string(bytes.Replace([]byte(b.Checkpoint), []byte("\n"), []byte("\n1"), 1))
			}},
		{name: "checkpoint missing", step: 0, problem: bundle.ProblemCheckpoint,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Checkpoint = "" }},
		{name: "proof mismatch", step: 1, problem: bundle.ProblemProof,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0].Audit[0].Proof[0][0] ^= 1 }},
		{name: "audit record edited", step: 2, problem: bundle.ProblemProof,
			tamper: func(t *testing.T, b *bundle.Bundle) {
				e := &b.Steps[1].Audit[0]
				e.Record = string(bytes.Replace([]byte(e.Record), []byte(`"node-1"`), []byte(`"node-2"`), 1))
			}},
		{name: "audit record of another step", step: 2, problem: bundle.ProblemAuditMissing,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[1].Audit = b.Steps[0].Audit }},
		{name: "audit record missing", step: 1, problem: bundle.ProblemAuditMissing,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps[0].Audit = nil }},
		{name: "duplicate step", step: 3, problem: bundle.ProblemDuplicate, reason: reason.ReplayDetected,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Steps = append(b.Steps, b.Steps[0]) }},
		{name: "another workflow", step: 1, problem: bundle.ProblemWorkflow,
			tamper: func(t *testing.T, b *bundle.Bundle) { b.Workflow.ID = "wf-2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := w.bundle(t)
			tc.tamper(t, b)
			// Through the wire form: what is verified is what a reader would parse.
			out, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if b, err = bundle.Parse(out, bundle.Limits{}); err != nil {
				t.Fatal(err)
			}
			rep, err := w.verify(t, b, tc.opts...)
			if err == nil || rep.OK {
				t.Fatal("tampered bundle verifies")
			}
			if !errors.Is(err, bundle.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			var be *bundle.Error
			errors.As(err, &be)
			var found *bundle.StepError
			for _, f := range be.Failures {
				if f.Step == tc.step && f.Problem == tc.problem {
					found = f
					break
				}
			}
			if found == nil {
				t.Fatalf("want step %d %s, got: %v", tc.step, tc.problem, err)
			}
			if tc.reason != "" && found.Reason != tc.reason {
				t.Fatalf("step %d %s: reason %q, want %q (%v)", tc.step, tc.problem, found.Reason, tc.reason, found)
			}
			if tc.step > 0 && rep.Steps[tc.step-1].OK {
				t.Fatalf("step %d is reported OK", tc.step)
			}
		})
	}
}

func otherLogKey(t testing.TB) string {
	t.Helper()
	s, err := audit.LoadOrCreateKey(filepath.Join(t.TempDir(), "other.key"), "other-log")
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.VerifierKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The registry is consulted as of each step's time: a revocation after the workflow leaves
// the bundle valid (forensics), one before a step rejects that step.
func TestVerifyAsOfEachStepsTime(t *testing.T) {
	w := newWorkflow(t)
	b := w.bundle(t)
	snap, err := w.reg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		agent   agent
		at      time.Time
		failing int // 0: verifies
		reason  reason.Code
	}{
		{"revoked after the workflow", w.researcher, t0.Add(time.Hour), 0, ""},
		{"researcher revoked between the steps", w.researcher, t0.Add(7 * time.Second), 2, reason.AgentRevoked},
		{"planner revoked before it delegated", w.planner, t0.Add(-time.Second), 1, reason.AgentRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := registry.Parse(snap)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Revoke(tc.agent.id, tc.at); err != nil {
				t.Fatal(err)
			}
			_, err = bundle.Verify(context.Background(), b, reg, bundle.WithLogKey(w.logKey))
			if tc.failing == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *bundle.StepError
			if !errors.As(err, &se) || se.Step != tc.failing || se.Problem != bundle.ProblemHandoff || se.Reason != tc.reason {
				t.Fatalf("want step %d handoff_rejected [%s], got %v", tc.failing, tc.reason, err)
			}
		})
	}
}
