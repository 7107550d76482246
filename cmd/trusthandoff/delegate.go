package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/capability"
	"github.com/trusthandoff/trusthandoff-go/packet"
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
the deriving agent's own key, may not outlive its parent (its expiry is capped at the
parent's), and may only narrow: actions a subset, max_tool_calls no higher (inherited when
not given), constraints at least as strict (inherited when not given). After a key
rotation, --agent-id names the issuer's registered id. Prints {"capability_id", "token",
...}.`,
		Example: `  ROOT=$(trusthandoff delegate --key alice.key --to "$BOB" --actions read,search,send_email --max-tool-calls 10 | jq -r .token)
  LEAF=$(trusthandoff delegate --key bob.key --to "$CAROL" --actions send_email --parent "$ROOT" | jq -r .token)`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if to == "" || actions == nil {
				return usageErr("--to and --actions are required")
			}
			if err := packet.CheckAgentID(to); err != nil {
				return usageErr("--to: %v", err)
			}
			if ttl <= 0 {
				return usageErr("--ttl must be positive")
			}
			opts := []capability.Option{capability.WithTTL(ttl)}
			set := c.Flags().Changed
			if set("max-tool-calls") {
				if maxToolCalls < 0 {
					return usageErr("--max-tool-calls must not be negative")
				}
				opts = append(opts, capability.WithMaxToolCalls(maxToolCalls))
			}
			if review || set("max-runtime") || dataBoundary != "" {
				k := capability.Constraints{RequiresHumanReview: review}
				if set("max-runtime") {
					if maxRuntime < 0 {
						return usageErr("--max-runtime must not be negative")
					}
					k.MaxRuntimeSeconds = &maxRuntime
				}
				if dataBoundary != "" {
					k.DataBoundary = &dataBoundary
				}
				opts = append(opts, capability.WithConstraints(k))
			}
			if issuer != "" {
				if err := packet.CheckAgentID(issuer); err != nil {
					return usageErr("--agent-id: %v", err)
				}
				opts = append(opts, capability.WithIssuerAgent(issuer))
			}
			if parent != "" {
				par, err := capability.DecodeToken(parent, canonical.Limits{})
				if err != nil {
					return usageErr("--parent is not a capability token: %v", err)
				}
				opts = append(opts, capability.WithParent(par))
			}
			signer, err := loadSigner(key)
			if err != nil {
				return err
			}
			capa, err := capability.Delegate(signer, to, actions, opts...)
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
	fl.Int64Var(&maxToolCalls, "max-tool-calls", 0, "maximum tool calls (default: no limit, or the parent's)")
	fl.DurationVar(&ttl, "ttl", capability.DefaultTTL, "validity (capped at the parent's expiry)")
	fl.StringVar(&parent, "parent", "", "parent capability token to derive from")
	fl.StringVar(&issuer, "agent-id", "", "issuer agent id, when the key's agent id differs from the derived one (after rotation)")
	fl.Int64Var(&maxRuntime, "max-runtime", 0, "constraints.max_runtime_seconds (default: none, or the parent's)")
	fl.StringVar(&dataBoundary, "data-boundary", "", "constraints.data_boundary")
	fl.BoolVar(&review, "requires-review", false, "constraints.requires_human_review")
	return c
}
