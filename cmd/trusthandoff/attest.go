package main

import (
	"crypto/ed25519"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func attestCmd() *cobra.Command {
	var ex executorFlags
	var packetID, envFile, result, why string
	c := &cobra.Command{
		Use:   "attest --key KEY (--packet-id ID | --envelope FILE) --status STATUS --result JSON [--reason JSON] [--agent-id ID]",
		Short: "Sign an execution attestation (reference-compatible) and print it",
		Long: `Sign an ExecutionAttestation: the executing agent states the outcome of a packet.
STATUS is one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT. The result (and optional reason) are
JSON values hashed in the reference's canonical form (compact, sorted, floats forbidden).
signed_by is the key's agent id; after 'registry rotate', sign with the new key and
--agent-id set to the agent's registered id (verify-attestation --registry then finds the
key by its fingerprint among that agent's keys).`,
		Example: `  trusthandoff attest --key bob.key --envelope env.json --status OK --result '{"summary": "3 tickets"}'
  trusthandoff attest --key bob.key --packet-id pkt-1 --status ERROR --result '{"error": "timeout"}' --reason '{"code": 504}'
  trusthandoff attest --key bob2.key --agent-id "$BOB" --envelope env.json --status OK --result '{}'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			signer, signedBy, err := ex.signer()
			if err != nil {
				return err
			}
			opts := []attest.CreateOption{attest.WithSignedBy(signedBy)}
			if (packetID == "") == (envFile == "") {
				return usageErr("give exactly one of --packet-id or --envelope")
			}
			if envFile != "" {
				env, err := readEnvelope(c, envFile)
				if err != nil {
					return err
				}
				packetID = env.Packet.PacketID
			}
			st, err := ex.statusValue()
			if err != nil {
				return err
			}
			res, err := parseJSONFlag("--result", result)
			if err != nil {
				return err
			}
			var reasonV *canonical.Value
			if why != "" {
				r, err := parseJSONFlag("--reason", why)
				if err != nil {
					return err
				}
				reasonV = &r
			}
			a, err := attest.Create(signer, packetID, st, res, reasonV, time.Now(), opts...)
			if err != nil {
				return usageErr("%v", err)
			}
			return printRaw(c, a.Marshal)
		},
	}
	ex.register(c, "executing agent's")
	c.Flags().StringVar(&packetID, "packet-id", "", "packet the attestation is about")
	c.Flags().StringVar(&envFile, "envelope", "", "take the packet id from this envelope")
	c.Flags().StringVar(&result, "result", "", "the result, a JSON value (no floats)")
	c.Flags().StringVar(&why, "reason", "", "optional reason, a JSON value (no floats)")
	return c
}

func parseJSONFlag(name, text string) (canonical.Value, error) {
	if text == "" {
		return canonical.Value{}, usageErr("%s is required (a JSON value)", name)
	}
	v, err := canonical.Parse([]byte(text), canonical.Limits{})
	if err != nil {
		return canonical.Value{}, usageErr("%s: %v", name, err)
	}
	return v, nil
}

// attestationDecision is verify-attestation's output: a decision like verify's, plus the
// signer it resolved.
type attestationDecision struct {
	Decision string      `json:"decision"`
	Reason   reason.Code `json:"reason"`
	PacketID string      `json:"packet_id"`
	Detail   string      `json:"detail"`
	Signer   string      `json:"signer,omitempty"`
	Flags    []string    `json:"flags,omitempty"`
}

func verifyAttestationCmd() *cobra.Command {
	var pubFile, reg, at, result, why, expect string
	var maxAge, skew time.Duration
	var noReplay bool
	var st stateFlags
	c := &cobra.Command{
		Use:   "verify-attestation (--public-key PEM_FILE | --registry REG) [--expect-signer AGENT] [--state DIR | --redis URL] [--at RFC3339] [--result JSON] [FILE|-]",
		Short: "Verify an execution attestation and print the decision",
		Long: `Verify an ExecutionAttestation: bound to the signer's key (fingerprint and signed_by),
signature over the framed bytes, optionally about the given --result/--reason, fresh (not
older than --max-age, not in the future beyond --skew), its signer not revoked in the state
store (what 'revoke --agent-id' records), and not a replay: its (key, nonce) is recorded in
the state store like a packet nonce (--no-replay-check skips only that).

With --registry the signer is the registered agent signed_by names, through its key whose
fingerprint the attestation carries, valid at the verification instant (so an agent that
rotated its key and attested with --agent-id verifies; a key inside its overlap window is
flagged token_overlap_used). With --public-key, signed_by must be that key's own agent id.
--expect-signer AGENT rejects an attestation signed by anyone else (public_key_mismatch).

Prints {"decision", "reason", "packet_id", "detail", "signer", "flags"} (signer and flags
only for an accepted attestation, flags only when one applies); exit 0 ACCEPT, 1 REJECT,
2 usage error, 3 store unavailable.`,
		Example: `  trusthandoff verify-attestation --registry reg.json --expect-signer "$BOB" att.json
  trusthandoff verify-attestation --public-key bob.key.pub --result '{"summary": "3 tickets"}' att.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if (pubFile == "") == (reg == "") {
				return usageErr("give exactly one of --public-key or --registry")
			}
			if maxAge <= 0 || skew < 0 {
				return usageErr("--max-age must be positive and --skew not negative")
			}
			if expect != "" {
				if err := packet.CheckAgentID(expect); err != nil {
					return usageErr("--expect-signer: %v", err)
				}
			}
			now, err := parseAt(at)
			if err != nil {
				return err
			}
			var pub ed25519.PublicKey
			if pubFile != "" {
				if pub, err = readPublicKey(pubFile); err != nil {
					return err
				}
			}
			var r attest.Registry
			if reg != "" {
				if r, err = loadRegistry(reg); err != nil {
					return err
				}
			}
			opts := []attest.Option{attest.WithMaxAge(maxAge), attest.WithSkew(skew)}
			if expect != "" {
				opts = append(opts, attest.WithExpectedSigner(expect))
			}
			if result != "" {
				res, err := parseJSONFlag("--result", result)
				if err != nil {
					return err
				}
				var rv *canonical.Value
				if why != "" {
					r, err := parseJSONFlag("--reason", why)
					if err != nil {
						return err
					}
					rv = &r
				}
				opts = append(opts, attest.WithOutcome(res, rv))
			}
			data, err := readInput(c, args, attest.MaxSize)
			if err != nil {
				return err
			}
			d := attestationDecision{Decision: verify.Reject}
			finish := func(err error) error {
				if err == nil {
					d.Decision, d.Reason, d.Detail = verify.Accept, reason.OK, "attestation verified"
				} else {
					d.Reason, d.Detail, d.Signer, d.Flags = reason.Of(err, reason.MalformedEnvelope), err.Error(), "", nil
				}
				if perr := printJSON(c, &d); perr != nil {
					return perr
				}
				switch {
				case d.Reason == reason.StoreUnavailable:
					return &exitError{code: exitUnavailable}
				case err != nil:
					return &exitError{code: exitRejected}
				}
				return nil
			}
			a, err := attest.Parse(data)
			if err != nil {
				return finish(err)
			}
			d.PacketID = a.PacketID
			// The state store is always open: revocations are checked even when the
			// nonce is not recorded.
			s, err := openState(c.Context(), &st)
			if err != nil {
				return err
			}
			defer s.Close()
			opts = append(opts, attest.WithRevocations(s.revocations))
			if !noReplay {
				opts = append(opts, attest.WithNonceStore(s.replay))
			}
			if r == nil {
				d.Signer = a.SignedBy
				return finish(attest.VerifyContext(c.Context(), a, pub, now, opts...))
			}
			signer, err := attest.VerifyRegistered(c.Context(), a, r, now, opts...)
			d.Signer = signer.AgentID
			if signer.OverlapUsed {
				d.Flags = []string{verify.FlagOverlapUsed}
			}
			return finish(err)
		},
	}
	fl := c.Flags()
	fl.StringVar(&pubFile, "public-key", "", "signer's SPKI PEM public key file")
	fl.StringVar(&reg, "registry", "", "registry to find the signer's key in (by signed_by and the key fingerprint)")
	fl.StringVar(&expect, "expect-signer", "", "reject unless the attestation is signed by this agent id")
	fl.StringVar(&at, "at", "", "verify as of this RFC 3339 instant (default now)")
	fl.StringVar(&result, "result", "", "require the attestation to be about this JSON result")
	fl.StringVar(&why, "reason", "", "with --result: the JSON reason it must carry")
	fl.DurationVar(&maxAge, "max-age", attest.DefaultMaxAge, "oldest acceptable attestation")
	fl.DurationVar(&skew, "skew", attest.DefaultSkew, "allowed clock skew")
	fl.BoolVar(&noReplay, "no-replay-check", false, "do not record the nonce (forensic re-verification); revocations are still checked")
	st.register(c)
	return c
}
