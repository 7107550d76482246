package receipt_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
)

// t0 is the protocol time at which every fixture handoff is issued.
var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

type agent struct {
	s  *identity.KeySigner
	id string
}

func newAgent(t testing.TB) agent {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	return agent{s, identity.AgentIDOf(s.Public())}
}

// fixture: alice hands tasks to bob; carol is registered too; mallory is not.
type fixture struct {
	alice, bob, carol, mallory agent
	reg                        *registry.Registry
	replay                     *replay.Memory
	revoked                    *revocation.Memory
	now                        time.Time // the verifiers' clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{alice: newAgent(t), bob: newAgent(t), carol: newAgent(t), mallory: newAgent(t), reg: registry.New()}
	for _, a := range []agent{f.alice, f.bob, f.carol} {
		if _, err := f.reg.Add("", a.s.Public(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.now = t0.Add(time.Minute)
	clock := func() time.Time { return f.now }
	f.replay = replay.NewMemory(replay.MemoryConfig{Now: clock})
	f.revoked = revocation.NewMemory(revocation.MemoryConfig{Now: clock})
	return f
}

func (f *fixture) verifier(t testing.TB, opts ...receipt.Option) *receipt.Verifier {
	t.Helper()
	v, err := receipt.NewVerifier(f.reg, append([]receipt.Option{
		receipt.WithReplay(f.replay), receipt.WithRevocations(f.revoked),
		receipt.WithClock(func() time.Time { return f.now }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// handoff is a packet from alice to `to`, issued at t0, valid 900 s.
func (f *fixture) handoff(t testing.TB, to agent, opts ...packet.BuildOption) *packet.Envelope {
	t.Helper()
	env, err := packet.Build(f.alice.s, to.id, "summarize the tickets", append([]packet.BuildOption{
		packet.WithIssuedAt(t0), packet.WithTTL(900 * time.Second), packet.WithActions("read_tickets"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// params: OK, outcome "result", executed from t0+10s to t0+50s.
func params() receipt.Params {
	return receipt.Params{Status: receipt.StatusOK, Outcome: []byte("result"), StartedAt: t0.Add(10 * time.Second), FinishedAt: t0.Add(50 * time.Second)}
}

func (f *fixture) sign(t testing.TB, by agent, env *packet.Envelope, p receipt.Params) *receipt.Receipt {
	t.Helper()
	r, err := receipt.Sign(by.s, by.id, env.Packet, packet.Rule04, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resign signs a hand-edited receipt again with s (what an executor that lies would do).
func resign(t testing.TB, r *receipt.Receipt, s identity.Signer) *receipt.Receipt {
	t.Helper()
	r.PublicKey = identity.PublicKeyPEM(s.Public())
	msg, err := r.SigningBytes()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s.Sign(msg)
	copy(r.Signature[:], sig)
	return r
}

// failingStore fails every call, as a store that lost its backend does.
type failingStore struct{}

var errDown = errors.New("backend down")

func (failingStore) Record(context.Context, []byte, time.Time) (bool, error) { return false, errDown }
func (failingStore) Revoked(context.Context, revocation.Kind, string) (revocation.Entry, bool, error) {
	return revocation.Entry{}, false, errDown
}

// memSink records events; fail makes Emit fail.
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (s *memSink) Emit(_ context.Context, ev audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errDown
	}
	s.events = append(s.events, ev)
	return nil
}

func pub(a agent) ed25519.PublicKey { return a.s.Public() }
