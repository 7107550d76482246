package main

import (
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func attestCmd() *cobra.Command {
	var key, packetID, envFile, status, result, why string
	c := &cobra.Command{
		Use:   "attest --key KEY (--packet-id ID | --envelope FILE) --status STATUS --result JSON [--reason JSON]",
		Short: "Sign an execution attestation (reference-compatible) and print it",
		Long: `Sign an ExecutionAttestation: the executing agent states the outcome of a packet.
STATUS is one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT. The result (and optional reason) are
JSON values hashed in the reference's canonical form (compact, sorted, floats forbidden).`,
		Example: `  trusthandoff attest --key bob.key --envelope env.json --status OK --result '{"summary": "3 tickets"}'
  trusthandoff attest --key bob.key --packet-id pkt-1 --status ERROR --result '{"error": "timeout"}' --reason '{"code": 504}'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			signer, err := loadSigner(key)
			if err != nil {
				return err
			}
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
			st := attest.Status(status)
			if !st.Valid() {
				return usageErr("--status must be one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT")
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
			a, err := attest.Create(signer, packetID, st, res, reasonV, time.Now())
			if err != nil {
				return usageErr("%v", err)
			}
			return printRaw(c, a.Marshal)
		},
	}
	c.Flags().StringVar(&key, "key", "", "executing agent's private key file (mode 0600)")
	c.Flags().StringVar(&packetID, "packet-id", "", "packet the attestation is about")
	c.Flags().StringVar(&envFile, "envelope", "", "take the packet id from this envelope")
	c.Flags().StringVar(&status, "status", "OK", "OK, ERROR, PARTIAL, REJECTED or TIMEOUT")
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

func verifyAttestationCmd() *cobra.Command {
	var pubFile, reg, at, result, why string
	var maxAge, skew time.Duration
	var noReplay bool
	var st stateFlags
	c := &cobra.Command{
		Use:   "verify-attestation (--public-key PEM_FILE | --registry REG) [--at RFC3339] [--result JSON] [FILE|-]",
		Short: "Verify an execution attestation and print the decision",
		Long: `Verify an ExecutionAttestation: bound to the signer's key (fingerprint and signed_by),
signature over the framed bytes, optionally about the given --result/--reason, fresh (not
older than --max-age, not in the future beyond --skew), and not a replay: its (key, nonce)
is recorded in the state store like a packet nonce. With --registry the key is looked up by
signed_by. Prints {"decision", "reason", "packet_id", "detail"}; exit 0 ACCEPT, 1 REJECT,
2 usage error, 3 store unavailable.`,
		Example: "  trusthandoff verify-attestation --registry reg.json att.json\n  trusthandoff verify-attestation --public-key bob.key.pub --result '{\"summary\": \"3 tickets\"}' att.json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if (pubFile == "") == (reg == "") {
				return usageErr("give exactly one of --public-key or --registry")
			}
			now, err := parseAt(at)
			if err != nil {
				return err
			}
			data, err := readInput(c, args, attest.MaxSize)
			if err != nil {
				return err
			}
			d := verify.Decision{Decision: verify.Reject}
			finish := func(err error) error {
				if err == nil {
					d.Decision, d.Reason, d.Detail = verify.Accept, reason.OK, "attestation verified"
				} else {
					d.Reason, d.Detail = reason.Of(err, reason.MalformedEnvelope), err.Error()
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
			var pub ed25519.PublicKey
			if pubFile != "" {
				if pub, err = readPublicKey(pubFile); err != nil {
					return err
				}
			} else {
				r, err := loadRegistry(reg)
				if err != nil {
					return err
				}
				agent, ok := r.Agent(a.SignedBy)
				if !ok {
					return finish(reason.New(reason.UnknownAgent, "signed_by "+a.SignedBy+" is not registered"))
				}
				for _, k := range agent.Keys {
					if p, err := identity.ParsePublicKeyPEM(k.PublicKey); err == nil && identity.Fingerprint(p) == a.Fingerprint && r.KeyValid(a.SignedBy, p, now) {
						pub = p
					}
				}
				if pub == nil {
					return finish(reason.New(reason.PublicKeyMismatch, "no registered key of "+a.SignedBy+" valid now has the attestation's fingerprint"))
				}
			}
			opts := []attest.Option{attest.WithMaxAge(maxAge), attest.WithSkew(skew)}
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
			if !noReplay {
				s, err := openState(c.Context(), &st)
				if err != nil {
					return err
				}
				defer s.Close()
				opts = append(opts, attest.WithNonceStore(s.replay))
			}
			err = attest.VerifyContext(c.Context(), a, pub, now, opts...)
			if errors.Is(err, attest.ErrStoreUnavailable) {
				return finish(reason.Wrap(reason.StoreUnavailable, "nonce store unavailable", err))
			}
			return finish(err)
		},
	}
	fl := c.Flags()
	fl.StringVar(&pubFile, "public-key", "", "signer's SPKI PEM public key file")
	fl.StringVar(&reg, "registry", "", "registry to find the signer's key in (by signed_by)")
	fl.StringVar(&at, "at", "", "verify as of this RFC 3339 instant (default now)")
	fl.StringVar(&result, "result", "", "require the attestation to be about this JSON result")
	fl.StringVar(&why, "reason", "", "with --result: the JSON reason it must carry")
	fl.DurationVar(&maxAge, "max-age", attest.DefaultMaxAge, "oldest acceptable attestation")
	fl.DurationVar(&skew, "skew", attest.DefaultSkew, "allowed clock skew")
	fl.BoolVar(&noReplay, "no-replay-check", false, "do not record the nonce (forensic re-verification)")
	st.register(c)
	return c
}
