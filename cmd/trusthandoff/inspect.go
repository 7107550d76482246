package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

func inspectCmd() *cobra.Command {
	var at string
	c := &cobra.Command{
		Use:   "inspect [FILE|-]",
		Short: "Pretty-print an envelope, packet, capability token, approval or attestation and say what is wrong with it",
		Long: `Decode any TrustHandoff object (envelope, bare packet, capability token or its JSON,
approval, attestation), print it as JSON, and list every problem found without a registry:
strict-parse errors, signatures that do not verify under the object's own key, agent ids
that do not match their key, time windows (as of --at), TTL policy, capability attenuation.
Registry binding, revocation and replay are verify's job. Exits 0 when no problem is found,
1 otherwise, 2 when the input cannot be read.`,
		Example: "  trusthandoff inspect env.json\n  echo \"$TOKEN\" | trusthandoff inspect",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			now, err := parseAt(at)
			if err != nil {
				return err
			}
			data, err := readInput(c, args, canonical.DefaultMaxBytes)
			if err != nil {
				return err
			}
			rep := inspect(data, now)
			if err := printJSON(c, rep); err != nil {
				return err
			}
			if len(rep.Problems) > 0 {
				return &exitError{code: exitRejected}
			}
			return nil
		},
	}
	c.Flags().StringVar(&at, "at", "", "judge time windows as of this RFC 3339 instant (default now)")
	return c
}

type inspectReport struct {
	Kind     string   `json:"kind"`
	Object   any      `json:"object,omitempty"`
	Problems []string `json:"problems"`
	Notes    []string `json:"notes,omitempty"`
}

func (r *inspectReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func inspect(data []byte, now time.Time) *inspectReport {
	rep := &inspectReport{Kind: "unknown", Problems: []string{}}
	trimmed := strings.TrimSpace(string(data))
	if trimmed != "" && !strings.HasPrefix(trimmed, "{") {
		rep.Kind = "capability_token"
		inspectChain(rep, []string{trimmed}, now)
		return rep
	}
	v, err := canonical.Parse(data, canonical.Limits{})
	if err != nil {
		rep.problem("%v", err)
		return rep
	}
	var generic any
	_ = json.Unmarshal(data, &generic)
	rep.Object = generic
	has := func(k string) bool { _, ok := v.Get(k); return ok }
	switch {
	case has("packet"):
		rep.Kind = "envelope"
		env, err := packet.EnvelopeFromValue(&v)
		if err != nil {
			rep.problem("%v", err)
			return rep
		}
		inspectPacket(rep, env.Packet, now)
		if env.Packet.CapabilityToken != nil {
			tokens := env.Capabilities
			if len(tokens) == 0 {
				tokens = []string{*env.Packet.CapabilityToken}
			}
			inspectChain(rep, tokens, now)
		}
		for i := range env.Approvals {
			inspectApproval(rep, &env.Approvals[i], env.Packet, now)
		}
	case has("packet_id") && has("signature_algo"):
		rep.Kind = "packet"
		p, err := packet.FromValue(&v)
		if err != nil {
			rep.problem("%v", err)
			return rep
		}
		inspectPacket(rep, p, now)
	case has("capability_id"):
		rep.Kind = "capability"
		// Capability JSON (as a token decodes to): inspect it through its token.
		b, err := canonical.Marshal(&v, canonical.CompactSorted())
		if err != nil {
			rep.problem("%v", err)
			return rep
		}
		inspectChain(rep, []string{tokenOf(b)}, now)
	case has("approval_id"):
		rep.Kind = "approval"
		inspectApproval(rep, &v, nil, now)
	case has("outcome_hash"):
		rep.Kind = "attestation"
		a, err := attest.FromValue(&v)
		if err != nil {
			rep.problem("%v", err)
			return rep
		}
		rep.Notes = append(rep.Notes, "attestation signature needs the signer's public key: use verify-attestation")
		if age := now.Sub(a.Time()); age < -30*time.Second {
			rep.problem("timestamp is %v in the future", -age)
		}
	default:
		rep.problem("not a TrustHandoff object (no packet, packet_id, capability_id, approval_id or outcome_hash)")
	}
	return rep
}

func parsePacketKey(p *packet.Packet) (ed25519.PublicKey, error) {
	return identity.ParsePublicKeyPEM(p.PublicKey)
}

func inspectPacket(rep *inspectReport, p *packet.Packet, now time.Time) {
	pub, err := parsePacketKey(p)
	if err != nil {
		rep.problem("public_key: %v", err)
		return
	}
	if rule, err := p.VerifySignature(pub); err != nil {
		rep.problem("signature: %v", err)
	} else {
		rep.Notes = append(rep.Notes, "signature verifies under rule "+string(rule)+" with the packet's own key (registry binding not checked)")
	}
	if id := identity.AgentID(p.PublicKey); id != p.FromAgent {
		rep.Notes = append(rep.Notes, fmt.Sprintf("from_agent %s is not the id derived from public_key (%s): fine only after a key rotation", p.FromAgent, id))
	}
	if err := packet.ValidateTime(p, now, &packet.TimePolicy{Skew: packet.DefaultSkew}); err != nil {
		rep.problem("time: %v", err)
	}
	if err := packet.ValidateTime(p, now, &packet.TimePolicy{Skew: packet.DefaultSkew, Strict: true}); err != nil {
		rep.Notes = append(rep.Notes, "would fail strict mode: "+err.Error())
	}
	if err := packet.ValidateAIProvenance(p); err != nil {
		rep.problem("%v", err)
	}
	if p.Constraints != nil && p.Constraints.RequiresHumanReview {
		rep.Notes = append(rep.Notes, "requires a signed human approval (trusthandoff approve)")
	}
}

// selfCertified accepts a key for an agent id derived from it: inspect has no registry.
type selfCertified struct{}

func (selfCertified) KeyValid(agentID string, pub ed25519.PublicKey, _ time.Time) bool {
	return identity.AgentIDOf(pub) == agentID
}

func inspectChain(rep *inspectReport, tokens []string, now time.Time) {
	var chain []*capability.Capability
	for i, tok := range tokens {
		c, err := capability.DecodeToken(tok, canonical.Limits{})
		if err != nil {
			rep.problem("capability %d: %v", i, err)
			return
		}
		chain = append(chain, c)
	}
	if rep.Object == nil && len(chain) == 1 {
		rep.Object = json.RawMessage(chain[0].JSON())
	}
	if err := capability.VerifyChain(chain, selfCertified{}, now); err != nil {
		rep.problem("capability chain (keys self-certified, no registry): %v", err)
	}
}

func inspectApproval(rep *inspectReport, v *canonical.Value, p *packet.Packet, now time.Time) {
	a, err := approval.FromValue(v)
	if err != nil {
		rep.problem("%v", err)
		return
	}
	if p == nil {
		rep.Notes = append(rep.Notes, "approval "+a.ApprovalID+": packet digest not checked (no packet)")
		return
	}
	pub, err := parsePacketKey(p)
	if err != nil {
		return
	}
	rule, err := p.VerifySignature(pub)
	if err != nil {
		return
	}
	digest, _ := approval.Digest(p, rule)
	if err := approval.Verify(a, digest, approverOnly{}, now, packet.DefaultSkew); err != nil {
		rep.problem("%v", err)
	}
}

// approverOnly treats every self-certified key as an approver: inspect has no registry.
type approverOnly struct{ selfCertified }

func (approverOnly) HasRole(string, string) bool { return true }

func tokenOf(compactJSON []byte) string { return base64.RawURLEncoding.EncodeToString(compactJSON) }
