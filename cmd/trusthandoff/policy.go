package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/policy"
)

func policyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Check receiver policy files (verify --policy, exec --policy)",
		Long: `A receiver policy file says what this verifier accepts, whatever the sender asks for: the
agent it serves (as), strict mode, skew, grace, TTLs, delegation depth, whether a capability
is required, an action catalogue (risk, review, deny per action) and the approval rules.
It is YAML or JSON; unknown or duplicate keys, wrong types and out-of-range values are
errors. 'verify --policy FILE' and 'exec --policy FILE' read one; flags given on their
command line override it.`,
	}
	c.AddCommand(policyCheckCmd(), policySchemaCmd())
	return c
}

func policyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE|-",
		Short: "Validate a policy file and print the effective policy",
		Long: `Validate one policy file (YAML or JSON; '-' reads stdin) and print the effective policy as
JSON: every setting explicit, defaults filled in. The output is itself a valid policy file
that means the same. Exit 0 when the file is valid; 2, with a message naming the file, line,
field and problem, when it is not.`,
		Example: `  trusthandoff policy check examples/policy/strict-production.yaml
  trusthandoff policy check - < policy.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := loadPolicy(c, args[0])
			if err != nil {
				return err
			}
			return printJSON(c, p)
		},
	}
}

func policySchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "schema",
		Short:   "Print the JSON Schema (draft 2020-12) of the policy file",
		Long:    "Print the JSON Schema (draft 2020-12) of the policy file, for editors and CI. 'policy check'\nchecks a few more rules than the schema can say (duplicate keys, ranges of durations,\nunreachable action rules).",
		Example: "  trusthandoff policy schema > policy.schema.json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := c.OutOrStdout().Write(policy.Schema())
			return err
		},
	}
}

// loadPolicy reads a policy file, or stdin for "-"; any problem is a usage error.
func loadPolicy(c *cobra.Command, name string) (*policy.Policy, error) {
	if name != "-" {
		p, err := policy.Load(name)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return p, nil
	}
	data, err := io.ReadAll(io.LimitReader(c.InOrStdin(), policy.MaxSize+1))
	if err != nil {
		return nil, usageErr("reading stdin: %v", err)
	}
	p, err := policy.Parse(data)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return p, nil
}

// settings returns the verifier settings: those of the policy (the defaults without one),
// overridden by every pipeline flag given on the command line (changed reports whether a
// flag was given).
func (f *verifyFlags) settings(p *policy.Policy, changed func(flag string) bool) (policy.Settings, error) {
	s := p.Settings()
	if changed("as") {
		if f.as == "" {
			return s, usageErr("--as needs an agent id")
		}
		s.As = f.as
	}
	if changed("strict") {
		s.Strict = f.strict
	}
	if changed("skew") {
		s.Skew = f.skew
	}
	if changed("grace") {
		s.Grace = f.grace
	}
	if changed("max-depth") {
		s.MaxDepth = f.maxDepth
	}
	if changed("approvals") {
		s.ApprovalThreshold = f.approvals
	}
	if changed("require-capability") {
		s.RequireCapability = f.requireCap
	}
	if changed("ai-write-approval") {
		s.AIWriteApproval = f.aiWrite
	}
	return s, nil
}

// apply records the effective settings in the flags, for the code that reads them after
// build (exec's gate takes the grace).
func (f *verifyFlags) apply(s policy.Settings) {
	f.as, f.strict, f.skew, f.grace = s.As, s.Strict, s.Skew, s.Grace
	f.maxDepth, f.approvals, f.requireCap, f.aiWrite = s.MaxDepth, s.ApprovalThreshold, s.RequireCapability, s.AIWriteApproval
}
