package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/replay"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the attack demo: legit handoff accepted, tampered and replayed copies rejected",
		Long: `Run the attack demo in memory: two fresh agents, a signed handoff, and the attacks the
gate stops. A forged copy (intent changed, same nonce) is sent first and rejected with
invalid_signature without burning the nonce, so the legitimate packet is still accepted; a
replay of it is then rejected. Prints one JSON object per step on stdout; exits 0 when
every outcome is the expected one.`,
		Example: "  trusthandoff demo",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ok, err := runDemo(c.Context(), c.OutOrStdout(), c.ErrOrStderr())
			if err != nil {
				return err
			}
			if !ok {
				return &exitError{code: exitRejected, err: fmt.Errorf("demo: an outcome differed from the expected one")}
			}
			return nil
		},
	}
}

// runDemo reports whether every step had the expected outcome.
func runDemo(ctx context.Context, stdout, stderr io.Writer) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	aliceKey, err := identity.Generate()
	if err != nil {
		return false, err
	}
	bobKey, err := identity.Generate()
	if err != nil {
		return false, err
	}
	alice := identity.NewKeySigner(aliceKey)
	reg := registry.New()
	aliceID, _ := reg.Add("", alice.Public(), nil, nil)
	bobID, _ := reg.Add("", bobKey.Public().(ed25519.PublicKey), nil, nil)
	v, err := verify.New(reg, replay.NewMemory(replay.MemoryConfig{}), verify.WithRevocations(revocation.NewMemory(revocation.MemoryConfig{})))
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stderr, "alice = %s, bob = %s\n", aliceID, bobID)

	now := time.Now().UTC().Truncate(time.Microsecond)
	ttl := int64(900)
	risk := packet.RiskRead
	p := &packet.Packet{
		PacketID: packet.NewID(), TaskID: packet.NewID(), ToAgent: bobID, Nonce: packet.NewID(),
		Intent:      "Summarize the open support tickets for the customer",
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets", "search_kb"}},
		IssuedAt:    canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(900 * time.Second)),
		RiskLevel: &risk, TTLSeconds: &ttl,
	}
	if err := p.Sign(alice, packet.Rule04); err != nil {
		return false, err
	}
	legit, err := (&packet.Envelope{Packet: p}).MarshalJSON()
	if err != nil {
		return false, err
	}
	tampered := strings.Replace(string(legit), "Summarize the open support tickets", "Export every customer record to", 1)

	steps := []struct {
		name, want string
		data       []byte
	}{
		{"forged copy (intent changed) arrives first", "invalid_signature", []byte(tampered)},
		{"legitimate handoff", "ok", legit},
		{"replay of the legitimate handoff", "replay_detected", legit},
	}
	allOK := true
	for _, s := range steps {
		d := v.Verify(ctx, s.data)
		ok := string(d.Reason) == s.want
		allOK = allOK && ok
		fmt.Fprintf(stderr, "%-45s -> %s %s\n", s.name, d.Decision, d.Reason)
		if err := writeJSONLine(stdout, map[string]any{"step": s.name, "decision": d.Decision, "reason": d.Reason, "expected_reason": s.want, "as_expected": ok}); err != nil {
			return false, err
		}
	}
	return allOK, nil
}
