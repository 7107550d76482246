package main

import (
	"encoding/hex"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func receiptCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "receipt",
		Short: "Sign and verify execution receipts (trusthandoff/receipt/v1)",
		Long: `An execution receipt is the executor's signed statement of what came of a handoff: bound
to the packet's digest (not a sender-chosen id), signed by the packet's to_agent, with the
sha256 of the outcome bytes (and of an optional reason), when execution started and
finished, a fresh nonce, and the digests of the receipts whose results it used.`,
		Example: `  trusthandoff receipt sign --key bob.key --envelope env.json --outcome-file result.json > receipt.json
  trusthandoff receipt verify --registry reg.json --envelope env.json --outcome-file result.json receipt.json`,
	}
	c.AddCommand(receiptSignCmd(), receiptVerifyCmd())
	return c
}

// bytesFlag is a value given inline (--NAME) or from a file (--NAME-file).
type bytesFlag struct {
	name, text, file string
}

func (b *bytesFlag) register(c *cobra.Command, usage string) {
	c.Flags().StringVar(&b.text, b.name, "", usage+", given inline")
	c.Flags().StringVar(&b.file, b.name+"-file", "", usage+", read from this file")
	c.MarkFlagsMutuallyExclusive(b.name, b.name+"-file")
}

// value returns the bytes and whether any were given.
func (b *bytesFlag) value(c *cobra.Command) ([]byte, bool, error) {
	switch {
	case c.Flags().Changed(b.name + "-file"):
		data, err := os.ReadFile(b.file)
		if err != nil {
			return nil, false, usageErr("--%s-file: %v", b.name, err)
		}
		return data, true, nil
	case c.Flags().Changed(b.name):
		return []byte(b.text), true, nil
	}
	return nil, false, nil
}

func receiptSignCmd() *cobra.Command {
	var ex executorFlags
	var envFile, started, finished string
	var deps []string
	outcome, why := bytesFlag{name: "outcome"}, bytesFlag{name: "reason"}
	c := &cobra.Command{
		Use:   "sign --key KEY --envelope FILE (--outcome TEXT | --outcome-file F) [--status STATUS] [--reason TEXT | --reason-file F] [--depends-on RECEIPT …]",
		Short: "Sign the receipt of executing a handoff and print it",
		Long: `Sign a receipt as the executor of the handoff in --envelope: the key must be the packet's
to_agent's (after a key rotation, sign with the new key and --agent-id set to the agent's
registered id). The outcome is hashed as given, byte for byte; so is the reason, which is
omitted (reason_hash null) unless given. --started-at and --finished-at default to now.
--depends-on names a receipt file whose result this execution used (repeatable).`,
		Example: `  trusthandoff receipt sign --key bob.key --envelope env.json --outcome-file result.json
  trusthandoff receipt sign --key bob.key --envelope env.json --status ERROR --outcome '' --reason 'upstream timeout'
  trusthandoff receipt sign --key bob.key --envelope env2.json --outcome-file report.md --depends-on research.receipt.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := ex.checkAgentID(); err != nil {
				return err
			}
			st, err := ex.statusValue()
			if err != nil {
				return err
			}
			out, ok, err := outcome.value(c)
			if err != nil {
				return err
			}
			if !ok {
				return usageErr("give the outcome with --outcome or --outcome-file")
			}
			reasonBytes, _, err := why.value(c)
			if err != nil {
				return err
			}
			now := time.Now()
			start, err := timeFlag("--started-at", started, now)
			if err != nil {
				return err
			}
			end, err := timeFlag("--finished-at", finished, now)
			if err != nil {
				return err
			}
			if envFile == "" {
				return usageErr("--envelope is required")
			}
			signer, executor, err := ex.signer()
			if err != nil {
				return err
			}
			env, err := readEnvelope(c, envFile)
			if err != nil {
				return err
			}
			rule, err := signedRule(env.Packet)
			if err != nil {
				return usageErr("%s: %v", envFile, err)
			}
			p := receipt.Params{Status: st, Outcome: out, Reason: reasonBytes, StartedAt: start, FinishedAt: end}
			for _, file := range deps {
				dep, err := readReceipt(c, file)
				if err != nil {
					return err
				}
				d, err := dep.Digest()
				if err != nil {
					return usageErr("%s: %v", file, err)
				}
				p.DependsOn = append(p.DependsOn, d)
			}
			r, err := receipt.Sign(signer, executor, env.Packet, rule, p)
			if err != nil {
				return usageErr("%v", err)
			}
			return printRaw(c, r.Marshal)
		},
	}
	fl := c.Flags()
	ex.register(c, "executor's")
	fl.StringVar(&envFile, "envelope", "", "the envelope of the executed handoff")
	fl.StringVar(&started, "started-at", "", "when execution started, RFC 3339 (default now)")
	fl.StringVar(&finished, "finished-at", "", "when execution finished, RFC 3339 (default now)")
	fl.StringArrayVar(&deps, "depends-on", nil, "a receipt file whose result this execution used (repeatable)")
	outcome.register(c, "the outcome bytes")
	why.register(c, "the reason bytes (an error, a refusal)")
	return c
}

// signedRule returns the rule under which p's signature verifies by its own public key,
// the rule its digest is taken under.
func signedRule(p *packet.Packet) (packet.Rule, error) {
	pub, err := identity.ParsePublicKeyPEM(p.PublicKey)
	if err != nil {
		return "", err
	}
	return p.VerifySignature(pub)
}

func timeFlag(name, value string, def time.Time) (time.Time, error) {
	if value == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, usageErr("%s: %v", name, err)
	}
	return t, nil
}

func readReceipt(c *cobra.Command, file string) (*receipt.Receipt, error) {
	data, err := readInput(c, []string{file}, receipt.MaxSize)
	if err != nil {
		return nil, err
	}
	r, err := receipt.Parse(data)
	if err != nil {
		return nil, usageErr("%s: %v", file, err)
	}
	return r, nil
}

// receiptDecision is receipt verify's output: a decision like verify's, about a receipt.
type receiptDecision struct {
	Decision      string      `json:"decision"`
	Reason        reason.Code `json:"reason"`
	ReceiptID     string      `json:"receipt_id"`
	ReceiptDigest string      `json:"receipt_digest,omitempty"`
	PacketID      string      `json:"packet_id"`
	Executor      string      `json:"executor,omitempty"`
	Status        string      `json:"status,omitempty"`
	Detail        string      `json:"detail"`
	DryRun        bool        `json:"dry_run,omitempty"`
}

func receiptVerifyCmd() *cobra.Command {
	var reg, envFile, at string
	var auditLog auditLogFlags
	var deps []string
	var skew, grace, maxAge time.Duration
	var dryRun bool
	var st stateFlags
	outcome, why := bytesFlag{name: "outcome"}, bytesFlag{name: "reason"}
	c := &cobra.Command{
		Use:   "verify --registry REG --envelope FILE [--outcome TEXT | --outcome-file F] [--dependency RECEIPT=ENVELOPE …] [--state DIR | --redis URL] [--at RFC3339] [--dry-run] [FILE|-]",
		Short: "Verify an execution receipt against its handoff and print the decision",
		Long: `Verify a receipt against the envelope of the handoff it answers: it names that packet
(packet_id and the digest of its signed bytes), its executor is the packet's to_agent, its
public_key is a registered key of the executor valid at the verification instant, the
signature verifies, execution lay inside the packet's validity (started no earlier than
issued_at - --skew, finished no later than expires_at + --grace, or + --grace + --skew for
a TIMEOUT receipt, cut off at the deadline), it is fresh (finished
no later than now + --skew, at most --max-age ago), the outcome (and reason) match when
given, the executor is revoked neither in the registry nor in the state store, every
receipt it depends on verifies (give each with --dependency RECEIPT_FILE=ENVELOPE_FILE),
and its nonce is new: it is recorded in the state store like a packet nonce.

The packet's own signature and authority are not re-checked here: verify the envelope
with 'trusthandoff verify'. --at verifies as of an instant and implies --dry-run (nothing
recorded) unless --dry-run=false is given.

Prints {"decision", "reason", "receipt_id", "receipt_digest", "packet_id", "executor",
"status", "detail"}, and "dry_run": true for a dry run; exit 0 ACCEPT, 1 REJECT, 2 usage
error, 3 store or audit log unavailable.`,
		Example: `  trusthandoff receipt verify --registry reg.json --envelope env.json --outcome-file result.json receipt.json
  trusthandoff receipt verify --registry reg.json --envelope env2.json --dependency research.json=env1.json report.json
  trusthandoff receipt verify --registry reg.json --envelope env.json --at 2026-04-01T12:05:00Z receipt.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if reg == "" || envFile == "" {
				return usageErr("--registry and --envelope are required")
			}
			now, err := parseAt(at)
			if err != nil {
				return err
			}
			opt := receipt.VerifyOptions{At: now, DryRun: dryRun || (at != "" && !c.Flags().Changed("dry-run"))}
			out, ok, err := outcome.value(c)
			if err != nil {
				return err
			}
			reasonBytes, hasReason, err := why.value(c)
			if err != nil {
				return err
			}
			if hasReason && !ok {
				return usageErr("--reason needs --outcome or --outcome-file")
			}
			if ok {
				if out == nil {
					out = []byte{}
				}
				opt.Outcome, opt.Reason = out, reasonBytes
				if hasReason && opt.Reason == nil {
					opt.Reason = []byte{}
				}
			}
			r, err := loadRegistry(reg)
			if err != nil {
				return err
			}
			env, err := readEnvelope(c, envFile)
			if err != nil {
				return err
			}
			resolve, err := readDependencies(c, deps)
			if err != nil {
				return err
			}
			opt.Dependencies = resolve
			data, err := readInput(c, args, receipt.MaxSize)
			if err != nil {
				return err
			}
			s, err := openState(c.Context(), &st)
			if err != nil {
				return err
			}
			defer s.Close()
			vopts := []receipt.Option{receipt.WithSkew(skew), receipt.WithGrace(grace), receipt.WithMaxAge(maxAge),
				receipt.WithReplay(s.replay), receipt.WithRevocations(s.revocations)}
			if sink, err := auditLog.open(); err != nil {
				return err
			} else if sink != nil {
				defer sink.Close()
				vopts = append(vopts, receipt.WithAudit(sink, "trusthandoff-cli"))
			}
			v, err := receipt.NewVerifier(r, vopts...)
			if err != nil {
				return usageErr("%v", err)
			}
			d := receiptDecision{Decision: verify.Reject, DryRun: opt.DryRun}
			rc, err := receipt.Parse(data)
			if err == nil {
				d.ReceiptID, d.PacketID, d.Executor, d.Status = rc.ReceiptID, rc.PacketID, rc.Executor, string(rc.Status)
				if dg, derr := rc.Digest(); derr == nil {
					d.ReceiptDigest = hex.EncodeToString(dg[:])
				}
				err = v.Verify(c.Context(), rc, env, opt)
			}
			if err == nil {
				d.Decision, d.Reason, d.Detail = verify.Accept, reason.OK, "receipt verified"
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
		},
	}
	fl := c.Flags()
	fl.StringVar(&reg, "registry", "", "registry holding the executor's keys")
	fl.StringVar(&envFile, "envelope", "", "the envelope of the handoff the receipt answers")
	fl.StringVar(&at, "at", "", "verify as of this RFC 3339 instant (default now; implies --dry-run)")
	fl.BoolVar(&dryRun, "dry-run", false, "run every check but record no nonce")
	fl.StringArrayVar(&deps, "dependency", nil, "RECEIPT_FILE=ENVELOPE_FILE: a receipt depends_on names, with its handoff (repeatable)")
	fl.DurationVar(&skew, "skew", packet.DefaultSkew, "allowed clock skew between sender, executor and verifier")
	fl.DurationVar(&grace, "grace", 0, "how long past the packet's expiry execution may finish")
	fl.DurationVar(&maxAge, "max-age", receipt.DefaultMaxAge, "oldest acceptable receipt (time since finished_at)")
	auditLog.register(c, "append a receipt_accepted / receipt_rejected event to this log")
	outcome.register(c, "require the receipt to hash these outcome bytes")
	why.register(c, "with the outcome: the reason bytes the receipt must hash")
	st.register(c)
	return c
}

// readDependencies loads RECEIPT=ENVELOPE pairs into a resolver by receipt digest.
func readDependencies(c *cobra.Command, pairs []string) (receipt.DependencyResolver, error) {
	type dep struct {
		r   *receipt.Receipt
		env *packet.Envelope
	}
	byDigest := map[[32]byte]dep{}
	for _, pair := range pairs {
		rf, ef, ok := strings.Cut(pair, "=")
		if !ok || rf == "" || ef == "" {
			return nil, usageErr("--dependency %q: want RECEIPT_FILE=ENVELOPE_FILE", pair)
		}
		r, err := readReceipt(c, rf)
		if err != nil {
			return nil, err
		}
		env, err := readEnvelope(c, ef)
		if err != nil {
			return nil, err
		}
		d, err := r.Digest()
		if err != nil {
			return nil, usageErr("%s: %v", rf, err)
		}
		byDigest[d] = dep{r, env}
	}
	return func(d [32]byte) (*receipt.Receipt, *packet.Envelope, bool) {
		x, ok := byDigest[d]
		return x.r, x.env, ok
	}, nil
}
