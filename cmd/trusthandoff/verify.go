package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/policy"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
	"github.com/trusthandoff/trusthandoff-go/revocation"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

type verifyFlags struct {
	registry, at, auditLog, as    string
	auditKey                      string
	auditRotate                   int64
	policyFile                    string
	dryRun                        bool
	strict, requireCap, insecure  bool
	aiWrite                       bool
	maxBytes, maxDepth, approvals int
	skew, grace                   time.Duration
	state                         stateFlags
}

func verifyCmd() *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify [--registry REG] [--state DIR | --redis URL] [--policy FILE] [--as AGENT] [--at RFC3339] [--dry-run] [--strict] [FILE|-]",
		Short: "Verify a handoff envelope through the whole pipeline and print the decision",
		Long: `Verify a DelegationEnvelope (from FILE, or stdin) through the whole pipeline: strict parsing,
identity binding against the registry, signature (rule 0.4 or 0.3.3), time window and TTL
policy, capability chain, delegation depth and loops, human approvals, then replay (the
nonce is consumed only by a packet that passed everything else).

--policy FILE reads the receiver's policy (YAML or JSON; 'trusthandoff policy check FILE'
validates one): the agent served, strict mode, skew, grace, TTLs, depth, capabilities, an
action catalogue (risk, review, deny per action; unknown actions) and the approval rules.
The flags --as, --strict, --skew, --grace, --max-depth, --approvals, --require-capability
and --ai-write-approval, when given, override the file.

--as AGENT names the agent this verifier serves: a packet addressed to anyone else is
rejected wrong_recipient. --dry-run runs every step, reports replay_detected for a used
nonce, and consumes nothing (no nonce, no deny; with --audit-log its events are still
logged, marked dry_run); --at (verifying as of another instant, for
forensics) implies --dry-run unless --dry-run=false is given.

Prints {"decision", "reason", "packet_id", "detail"} and exits 0 for ACCEPT, 1 for REJECT
(unparsable input included), 2 for a usage error, 3 when the state store is unavailable.
Nonces and revocations persist in --state (default: the user's state directory) or in
Redis (--redis), shared with 'trusthandoff revoke'.`,
		Example: `  trusthandoff verify --registry reg.json env.json
  trusthandoff verify --registry reg.json --strict --state /var/lib/trusthandoff - < env.json
  trusthandoff verify --registry reg.json --as agent:bob env.json   # only packets for agent:bob
  trusthandoff verify --registry reg.json --policy receiver.yaml env.json
  trusthandoff verify --registry reg.json --at 2026-04-01T12:00:30Z old-env.json   # forensics: a dry run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			now, err := parseAt(f.at)
			if err != nil {
				return err
			}
			if f.maxBytes <= 0 {
				return usageErr("--max-bytes must be positive")
			}
			data, err := readInput(c, args, int64(f.maxBytes))
			if err != nil {
				return err
			}
			v, st, closeAudit, err := f.build(c, data)
			if err != nil {
				return err
			}
			defer st.Close()
			defer closeAudit()
			dry := f.dryRun
			if f.at != "" && !c.Flags().Changed("dry-run") {
				dry = true // forensic re-verification must not spend the packet
			}
			d := v.VerifyRequest(c.Context(), data, verify.Request{At: now, DryRun: dry})
			if d.AuditErr != nil {
				fmt.Fprintf(c.ErrOrStderr(), "trusthandoff: error: audit log: %v\n", d.AuditErr)
			}
			if err := printJSON(c, d); err != nil {
				return err
			}
			return decisionExit(d)
		},
	}
	c.Flags().StringVar(&f.at, "at", "", "verify as of this RFC 3339 instant (forensics; implies --dry-run); default now")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "run every check but consume no nonce and record no deny (audit events are marked dry_run)")
	f.register(c)
	return c
}

// register adds the pipeline flags shared by verify and exec.
func (f *verifyFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.policyFile, "policy", "", "receiver policy file, YAML or JSON (see 'trusthandoff policy'); pipeline flags given on the command line override it")
	fl.StringVar(&f.as, "as", "", "the agent id this verifier serves: packets addressed to anyone else are rejected (wrong_recipient)")
	fl.StringVar(&f.registry, "registry", "", "agent registry file (without it, ids are only self-certified: id = hash of the packet's key)")
	fl.BoolVar(&f.strict, "strict", false, "strict TTL mode: risk_level required, window capped at the policy TTL (recommended)")
	fl.BoolVar(&f.requireCap, "require-capability", false, "reject handoffs that carry no capability")
	fl.BoolVar(&f.aiWrite, "ai-write-approval", false, "require a human approval for AI-generated write handoffs")
	fl.BoolVar(&f.insecure, "insecure-unsigned-approval", false, "INSECURE compatibility: accept the reference's unsigned context[\"human_approval\"]")
	fl.IntVar(&f.maxBytes, "max-bytes", canonical.DefaultMaxBytes, "largest envelope accepted")
	fl.IntVar(&f.maxDepth, "max-depth", 5, "maximum delegation depth")
	fl.IntVar(&f.approvals, "approvals", 1, "signed approvals required when review is required")
	fl.DurationVar(&f.skew, "skew", packet.DefaultSkew, "allowed clock skew (max 300s; 0s allows none)")
	fl.DurationVar(&f.grace, "grace", 0, "allowed lateness after expiry (max 60s)")
	fl.StringVar(&f.auditLog, "audit-log", "", "append an audit event per decision to this JSONL file")
	fl.StringVar(&f.auditKey, "audit-key", "", "the audit log's signer key file (default: AUDIT_LOG.key, created 0600 on first use)")
	fl.Int64Var(&f.auditRotate, "audit-rotate-bytes", 0, auditRotateUsage)
	f.state.register(c)
}

// decisionExit maps a decision to the CLI's exit code.
func decisionExit(d *verify.Decision) error {
	switch {
	case d.Reason == reason.StoreUnavailable:
		return &exitError{code: exitUnavailable}
	case !d.Accepted():
		return &exitError{code: exitRejected}
	}
	return nil
}

// build loads the registry, opens the state and returns a verifier over them. data is the
// input, used only to name the packet in a store_unavailable decision.
func (f *verifyFlags) build(c *cobra.Command, data []byte) (*verify.Verifier, *state, func(), error) {
	var reg verify.Registry = registry.SelfCertified{}
	if f.registry != "" {
		r, err := loadRegistry(f.registry)
		if err != nil {
			return nil, nil, nil, err
		}
		reg = r
	} else {
		fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: no --registry: agent ids are self-certified (id = hash of the packet's own key), as in the reference; nobody can approve")
	}
	// The policy file, then the flags given on the command line (a bad file is a usage
	// error, before any state is opened).
	var pol *policy.Policy
	if f.policyFile != "" {
		p, err := policy.Load(f.policyFile)
		if err != nil {
			return nil, nil, nil, usageErr("--policy: %v", err)
		}
		pol = p
	}
	s, err := f.settings(pol, c.Flags().Changed)
	if err != nil {
		return nil, nil, nil, err
	}
	f.apply(s)
	st, err := openState(c.Context(), &f.state)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == exitUnavailable {
			// Still answer with a decision, so scripts see a REJECT, not silence.
			d := verify.Decision{Decision: verify.Reject, Reason: reason.StoreUnavailable, Detail: ee.err.Error()}
			if env, perr := packet.ParseEnvelope(data, canonical.Limits{MaxBytes: f.maxBytes}); perr == nil {
				d.PacketID = env.Packet.PacketID
			}
			if perr := printJSON(c, &d); perr != nil {
				return nil, nil, nil, perr
			}
		}
		return nil, nil, nil, err
	}
	opts := []verify.Option{
		verify.WithRevocations(st.revocations),
		verify.WithLimits(canonical.Limits{MaxBytes: f.maxBytes}),
	}
	opts = append(opts, s.Options()...)
	if pol != nil {
		opts = append(opts, verify.WithActionPolicy(pol))
	}
	if f.insecure {
		fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: --insecure-unsigned-approval honours the sender's own context[\"human_approval\"]")
		opts = append(opts, verify.WithInsecureUnsignedApproval())
	}
	closeAudit := func() {}
	if f.auditLog != "" {
		sink, err := openAuditLog(f.auditLog, f.auditKey, f.auditRotate)
		if err != nil {
			st.Close()
			return nil, nil, nil, auditLogErr(err)
		}
		closeAudit = func() { sink.Close() }
		opts = append(opts, verify.WithAudit(sink, "trusthandoff-cli"))
	}
	v, err := verify.New(reg, st.replay, opts...)
	if err != nil {
		closeAudit()
		st.Close()
		return nil, nil, nil, usageErr("%v", err)
	}
	return v, st, closeAudit, nil
}

func revokeCmd() *cobra.Command {
	var st stateFlags
	var capID, agentID string
	var auditLog auditLogFlags
	c := &cobra.Command{
		Use:   "revoke [--state DIR | --redis URL] (--capability ID | --agent-id ID) [--audit-log FILE]",
		Short: "Revoke a capability (and everything derived from it) or an agent",
		Long: `Record a revocation in the state store that 'trusthandoff verify' (and every verifier sharing
the store) consults. Revoking a capability revokes every capability derived from it; revoking
an agent revokes its keys and every capability it issued.

With --audit-log the revocation is then appended to that log as a "revocation" event (by
"operator"). The revocation is made first and never held up by the log: when the event
cannot be appended, the command says so and exits 3 with the revocation in force; running
it again records it.`,
		Example: "  trusthandoff revoke --capability 3f2a…\n  trusthandoff revoke --redis redis://127.0.0.1:6379/0 --agent-id agent:abc",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if (capID == "") == (agentID == "") {
				return usageErr("give exactly one of --capability or --agent-id")
			}
			e := revocation.Entry{Kind: revocation.KindCapability, ID: capID, At: time.Now().UTC()}
			if agentID != "" {
				e.Kind, e.ID = revocation.KindAgent, agentID
			}
			if err := revocation.Check(e.Kind, e.ID); err != nil {
				return usageErr("%v", err)
			}
			sink, err := auditLog.open()
			if err != nil {
				return err
			}
			if sink != nil {
				defer sink.Close()
			}
			s, err := openState(c.Context(), &st)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.revocations.Revoke(c.Context(), e); err != nil {
				if errors.Is(err, revocation.ErrUnavailable) {
					return unavailable(err)
				}
				return usageErr("%v", err)
			}
			if err := printJSON(c, map[string]any{"revoked": e.Kind, "id": e.ID, "at": e.At}); err != nil {
				return err
			}
			if sink != nil {
				ev := audit.RevocationEvent("trusthandoff-cli", string(e.Kind), e.ID, e.At, "operator")
				if err := sink.Emit(c.Context(), ev); err != nil {
					return unavailable(fmt.Errorf("revoked, but the audit log did not record it (run the command again to record it): %w", err))
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&capID, "capability", "", "capability_id to revoke")
	c.Flags().StringVar(&agentID, "agent-id", "", "agent id to revoke")
	auditLog.register(c, "then append a revocation event to this tamper-evident log")
	st.register(c)
	return c
}
