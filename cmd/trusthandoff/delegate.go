package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
)

func delegateCmd() *cobra.Command {
	var key, to, parent, issuer, dataBoundary string
	var actions []string
	var maxToolCalls, maxRuntime int64
	var ttl time.Duration
	var review bool
	c := &cobra.Command{
		Use:   "delegate --key KEY --to AGENT --actions a,b [--max-tool-calls N] [--ttl DURATION] [--parent TOKEN]",
		Short: "Issue a capability (or derive one from --parent) and print its token",
		Long: `Issue a DelegationCapability from the key's agent to AGENT, or, with --parent, derive a
narrower one from a capability the key's agent received. A derived capability is signed with
the deriving agent's own key, may not outlive its parent, and may only narrow: actions a
subset, max_tool_calls no higher (inherited when not given), constraints at least as strict
(inherited when not given). Prints {"capability_id", "token", ...}.`,
		Example: `  ROOT=$(trusthandoff delegate --key alice.key --to "$BOB" --actions read,search,send_email --max-tool-calls 10 | jq -r .token)
  LEAF=$(trusthandoff delegate --key bob.key --to "$CAROL" --actions send_email --parent "$ROOT" | jq -r .token)`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			signer, err := loadSigner(key)
			if err != nil {
				return err
			}
			if to == "" || actions == nil {
				return usageErr("--to and --actions are required")
			}
			if ttl <= 0 {
				return usageErr("--ttl must be positive")
			}
			perms := capability.Permissions{AllowedActions: actions}
			if maxToolCalls >= 0 {
				perms.MaxToolCalls = &maxToolCalls
			}
			var cons *capability.Constraints
			if review || maxRuntime >= 0 || dataBoundary != "" {
				cons = &capability.Constraints{RequiresHumanReview: review}
				if maxRuntime >= 0 {
					cons.MaxRuntimeSeconds = &maxRuntime
				}
				if dataBoundary != "" {
					cons.DataBoundary = &dataBoundary
				}
			}
			now := time.Now().UTC()
			expires := now.Add(ttl)
			var opts []capability.Option
			if issuer != "" {
				opts = append(opts, capability.WithIssuerAgent(issuer))
			}
			var capa *capability.Capability
			if parent == "" {
				capa, err = capability.Issue(signer, to, perms, cons, now, expires, opts...)
			} else {
				par, perr := capability.DecodeToken(parent, canonical.Limits{})
				if perr != nil {
					return usageErr("--parent: %v", perr)
				}
				if pe := par.ExpiresAt.Time(); expires.After(pe) {
					expires = pe // a child may not outlive its parent
				}
				if perms.MaxToolCalls == nil {
					perms.MaxToolCalls = par.Permissions.MaxToolCalls
				}
				if cons == nil && par.Constraints != nil {
					cc := *par.Constraints
					cons = &cc
				}
				capa, err = capability.Derive(par, signer, to, perms, cons, now, expires, opts...)
			}
			if err != nil {
				return usageErr("%v", err)
			}
			return printJSON(c, map[string]any{
				"capability_id": capa.CapabilityID, "token": capa.Token(),
				"issuer_agent": capa.IssuerAgent, "subject_agent": capa.SubjectAgent,
				"expires_at": canonical.FormatTimestamp(capa.ExpiresAt, canonical.ISOOffset),
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&key, "key", "", "issuing agent's private key file (mode 0600)")
	fl.StringVar(&to, "to", "", "subject agent id (who receives the authority)")
	fl.StringSliceVar(&actions, "actions", nil, "delegated actions, comma separated")
	fl.Int64Var(&maxToolCalls, "max-tool-calls", -1, "maximum tool calls (default: no limit, or the parent's)")
	fl.DurationVar(&ttl, "ttl", time.Hour, "validity (capped at the parent's expiry)")
	fl.StringVar(&parent, "parent", "", "parent capability token to derive from")
	fl.StringVar(&issuer, "agent-id", "", "issuer agent id, when the key's agent id differs from the derived one (after rotation)")
	fl.Int64Var(&maxRuntime, "max-runtime", -1, "constraints.max_runtime_seconds")
	fl.StringVar(&dataBoundary, "data-boundary", "", "constraints.data_boundary")
	fl.BoolVar(&review, "requires-review", false, "constraints.requires_human_review")
	return c
}
