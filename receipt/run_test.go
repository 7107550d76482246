package receipt_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/gate"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// runWorld is a gate serving bob, in a synctest bubble (time.Now is the bubble's clock).
type runWorld struct {
	alice, bob, carol agent
	reg               *registry.Registry
	revoked           *revocation.Memory
	gate              *gate.Gate
	receipts          *receipt.Verifier
}

func newRunWorld(t *testing.T) *runWorld {
	t.Helper()
	w := &runWorld{alice: newAgent(t), bob: newAgent(t), carol: newAgent(t), reg: registry.New()}
	for _, a := range []agent{w.alice, w.bob, w.carol} {
		if _, err := w.reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.revoked = revocation.NewMemory(revocation.MemoryConfig{})
	v, err := verify.New(w.reg, replay.NewMemory(replay.MemoryConfig{}), verify.WithRevocations(w.revoked), verify.WithRecipient(w.bob.id))
	if err != nil {
		t.Fatal(err)
	}
	if w.gate, err = gate.New(v, w.revoked); err != nil {
		t.Fatal(err)
	}
	if w.receipts, err = receipt.NewVerifier(w.reg, receipt.WithRevocations(w.revoked), receipt.WithReplay(replay.NewMemory(replay.MemoryConfig{}))); err != nil {
		t.Fatal(err)
	}
	return w
}

// envelope is a read handoff from alice to `to`, issued now, valid ttl.
func (w *runWorld) envelope(t *testing.T, to agent, ttl time.Duration, opts ...packet.BuildOption) ([]byte, *packet.Envelope) {
	t.Helper()
	env, err := packet.Build(w.alice.s, to.id, "summarize the tickets", append([]packet.BuildOption{packet.WithTTL(ttl), packet.WithActions("read_tickets")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return wire, env
}

func TestRun(t *testing.T) {
	errBoom := errors.New("tool crashed")
	tests := []struct {
		name   string
		ttl    time.Duration
		build  func(t *testing.T, w *runWorld) []packet.BuildOption
		to     func(w *runWorld) agent
		before func(t *testing.T, w *runWorld, wire []byte) // e.g. spend the nonce
		ctx    func(ctx context.Context) (context.Context, context.CancelFunc)
		task   func(w *runWorld) receipt.Task
		status receipt.Status
		code   reason.Code // the reason's code ("" for OK)
		errIs  error       // what Run's error wraps (nil: no error)
	}{
		{name: "ok", status: receipt.StatusOK, task: func(*runWorld) receipt.Task {
			return func(_ context.Context, h *verify.Decision) ([]byte, error) {
				time.Sleep(3 * time.Second) // the work takes a while (bubble time)
				return []byte("summary of " + h.Envelope.Packet.Intent), nil
			}
		}},
		{name: "task fails", status: receipt.StatusError, code: "error", errIs: errBoom, task: func(*runWorld) receipt.Task {
			return func(context.Context, *verify.Decision) ([]byte, error) { return nil, errBoom }
		}},
		{name: "partial result", status: receipt.StatusPartial, code: "partial", errIs: receipt.ErrPartial, task: func(*runWorld) receipt.Task {
			return func(context.Context, *verify.Decision) ([]byte, error) {
				return []byte("half"), fmt.Errorf("two of four sources: %w", receipt.ErrPartial)
			}
		}},
		{name: "handoff refused (replay)", status: receipt.StatusRejected, code: reason.ReplayDetected, errIs: gate.ErrRejected,
			before: func(t *testing.T, w *runWorld, wire []byte) {
				if _, err := w.gate.Execute(t.Context(), wire, func(context.Context, *verify.Decision) error { return nil }); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "sender revoked while running", status: receipt.StatusRejected, code: reason.AgentRevoked, errIs: gate.ErrInvalidated,
			task: func(w *runWorld) receipt.Task {
				return func(ctx context.Context, h *verify.Decision) ([]byte, error) {
					_ = w.revoked.Revoke(ctx, revocation.Entry{Kind: revocation.KindAgent, ID: h.Envelope.Packet.FromAgent})
					<-ctx.Done()
					return []byte("interrupted"), ctx.Err()
				}
			}},
		{name: "capability revoked while running", status: receipt.StatusRejected, code: reason.CapabilityRevoked, errIs: gate.ErrInvalidated,
			build: func(t *testing.T, w *runWorld) []packet.BuildOption {
				c, err := capability.Delegate(w.alice.s, w.bob.id, []string{"read_tickets"}, capability.WithTTL(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return []packet.BuildOption{packet.WithCapabilities(c)}
			},
			task: func(w *runWorld) receipt.Task {
				return func(ctx context.Context, h *verify.Decision) ([]byte, error) {
					_ = w.revoked.Revoke(ctx, revocation.Entry{Kind: revocation.KindCapability, ID: h.Chain[0].CapabilityID})
					<-ctx.Done()
					return nil, ctx.Err()
				}
			}},
		{name: "packet expired while running", ttl: 60 * time.Second, status: receipt.StatusTimeout, code: reason.Expired, errIs: gate.ErrInvalidated,
			task: func(*runWorld) receipt.Task {
				return func(ctx context.Context, _ *verify.Decision) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }
			}},
		{name: "packet expired while running, the task takes a while to stop", ttl: 60 * time.Second, status: receipt.StatusTimeout, code: reason.Expired, errIs: gate.ErrInvalidated,
			task: func(*runWorld) receipt.Task {
				return func(ctx context.Context, _ *verify.Decision) ([]byte, error) {
					<-ctx.Done()
					time.Sleep(250 * time.Millisecond) // cleaning up (bubble time)
					return nil, ctx.Err()
				}
			}},
		{name: "task ignores the expiry and reports success", ttl: 60 * time.Second, status: receipt.StatusTimeout, code: reason.Expired, errIs: gate.ErrInvalidated,
			task: func(*runWorld) receipt.Task {
				return func(ctx context.Context, _ *verify.Decision) ([]byte, error) {
					<-ctx.Done()
					return []byte("done anyway"), nil
				}
			}},
		{name: "caller's deadline while waiting for approval", status: receipt.StatusTimeout, code: "timeout", errIs: context.DeadlineExceeded,
			build: func(*testing.T, *runWorld) []packet.BuildOption {
				return []packet.BuildOption{packet.WithConstraints(packet.Constraints{RequiresHumanReview: true})}
			},
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 5*time.Second)
			}},
		{name: "caller's deadline", status: receipt.StatusTimeout, code: "timeout", errIs: context.DeadlineExceeded,
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 5*time.Second)
			},
			task: func(*runWorld) receipt.Task {
				return func(ctx context.Context, _ *verify.Decision) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newRunWorld(t)
				ttl := tc.ttl
				if ttl == 0 {
					ttl = 900 * time.Second
				}
				var opts []packet.BuildOption
				if tc.build != nil {
					opts = tc.build(t, w)
				}
				wire, env := w.envelope(t, w.bob, ttl, opts...)
				if tc.before != nil {
					tc.before(t, w, wire)
				}
				ctx, cancel := context.WithCancel(t.Context())
				if tc.ctx != nil {
					ctx, cancel = tc.ctx(t.Context())
				}
				defer cancel()
				task := func(context.Context, *verify.Decision) ([]byte, error) { return []byte("unused"), nil }
				if tc.task != nil {
					task = tc.task(w)
				}
				start := time.Now()
				res, r, err := receipt.Run(ctx, w.gate, w.bob.s, wire, task)
				switch {
				case tc.errIs == nil && err != nil:
					t.Fatalf("Run: %v", err)
				case tc.errIs != nil && !errors.Is(err, tc.errIs):
					t.Fatalf("Run: %v, want an error wrapping %v", err, tc.errIs)
				case r == nil:
					t.Fatal("no receipt")
				case r.Status != tc.status || res.Status != tc.status:
					t.Fatalf("status %s / %s, want %s", r.Status, res.Status, tc.status)
				}
				if tc.code == "" {
					if res.Reason != nil || r.ReasonHash != nil {
						t.Fatalf("OK with a reason: %s", res.Reason)
					}
				} else if want := fmt.Sprintf(`{"code":%q,`, tc.code); len(res.Reason) < len(want) || string(res.Reason[:len(want)]) != want {
					t.Fatalf("reason %s, want code %s", res.Reason, tc.code)
				}
				if r.StartedAt.Before(start) || r.FinishedAt.Before(r.StartedAt) || r.FinishedAt.After(time.Now()) {
					t.Fatalf("execution %v–%v outside the call %v–%v", r.StartedAt, r.FinishedAt, start, time.Now())
				}
				// The receipt verifies against the outcome and reason Run reports, and is
				// bound to the packet that was delivered.
				opt := receipt.VerifyOptions{Outcome: res.Outcome, Reason: res.Reason}
				if res.Outcome == nil {
					opt.Outcome = []byte{}
				}
				// (When the sender was revoked, the executor's receipt still verifies.)
				if err := w.receipts.Verify(t.Context(), r, env, opt); err != nil {
					t.Fatalf("receipt: %v", err)
				}
			})
		})
	}
}

func TestRunWithoutReceipt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRunWorld(t)
		task := func(context.Context, *verify.Decision) ([]byte, error) { return nil, nil }
		// Not JSON: nothing to bind a receipt to.
		res, r, err := receipt.Run(t.Context(), w.gate, w.bob.s, []byte("{"), task)
		if r != nil || !errors.Is(err, receipt.ErrNoReceipt) || !errors.Is(err, gate.ErrRejected) || res.Status != receipt.StatusRejected {
			t.Fatalf("malformed envelope: %v %v %+v", r, err, res)
		}
		// A packet for carol at bob's gate: refused, and bob cannot receipt carol's packet.
		wire, _ := w.envelope(t, w.carol, 900*time.Second)
		res, r, err = receipt.Run(t.Context(), w.gate, w.bob.s, wire, task, receipt.WithExecutor(w.bob.id))
		if r != nil || !errors.Is(err, receipt.ErrNoReceipt) || res.Decision.Reason != reason.WrongRecipient {
			t.Fatalf("wrong recipient: %v %v %+v", r, err, res)
		}
		if _, _, err := receipt.Run(t.Context(), nil, w.bob.s, wire, task); err == nil {
			t.Fatal("Run without a gate")
		}
		if _, _, err := receipt.Run(t.Context(), w.gate, w.bob.s, wire, task, receipt.WithRunClock(nil)); err == nil {
			t.Fatal("Run with a nil clock")
		}
	})
}

func TestRunDependsOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRunWorld(t)
		wire1, env1 := w.envelope(t, w.bob, 900*time.Second)
		_, first, err := receipt.Run(t.Context(), w.gate, w.bob.s, wire1, func(context.Context, *verify.Decision) ([]byte, error) { return []byte("notes"), nil })
		if err != nil {
			t.Fatal(err)
		}
		d, _ := first.Digest()
		time.Sleep(time.Second)
		wire2, env2 := w.envelope(t, w.bob, 900*time.Second)
		_, second, err := receipt.Run(t.Context(), w.gate, w.bob.s, wire2, func(context.Context, *verify.Decision) ([]byte, error) { return []byte("report"), nil },
			receipt.WithDependsOn(d), receipt.WithRunClock(time.Now))
		if err != nil {
			t.Fatal(err)
		}
		if len(second.DependsOn) != 1 || second.DependsOn[0] != d {
			t.Fatalf("depends_on %x", second.DependsOn)
		}
		resolve := func(x [32]byte) (*receipt.Receipt, *packet.Envelope, bool) { return first, env1, x == d }
		if err := w.receipts.Verify(t.Context(), second, env2, receipt.VerifyOptions{Outcome: []byte("report"), Dependencies: resolve}); err != nil {
			t.Fatal(err)
		}
	})
}
