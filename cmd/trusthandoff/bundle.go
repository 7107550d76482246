package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/policy"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

func bundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Create and verify workflow bundles (offline proof of a whole workflow)",
		Long: `A workflow bundle (trusthandoff/bundle/v1) holds everything needed to prove, offline and
long afterwards, what a multi-agent workflow delegated, under which authority, who executed
each step and what came back: every handoff envelope (with its capability chain and signed
approvals), every receipt (and optionally the outcomes), the audit records of each
acceptance with their inclusion proofs, the audit log's signed checkpoint, and optionally a
registry snapshot.`,
	}
	c.AddCommand(bundleCreateCmd(), bundleVerifyCmd())
	return c
}

type bundleCreateFlags struct {
	taskID, correlationID              string
	envelopes, approvals, receipts     []string
	outcomes, reasons                  []string
	auditLog, checkpoint, registryFile string
	out                                string
}

func bundleCreateCmd() *cobra.Command {
	var f bundleCreateFlags
	c := &cobra.Command{
		Use:   "create (--task-id ID | --correlation-id ID) --envelope FILE… [--approval FILE…] [--receipt FILE…] [--outcome FILE…] [--audit-log LOG [--checkpoint CP]] [--registry REG] [--out PATH]",
		Short: "Assemble the bundle of one workflow from its envelopes, receipts and audit log",
		Long: `Assemble the bundle of one workflow: the handoffs whose packets carry --task-id ID, or
whose acceptance the audit log recorded under --correlation-id ID (that needs --audit-log).
Objects of other workflows may be given too: only the workflow's own are taken.

--envelope files are envelopes as sent or verified (when one packet comes in several, the
one with the most approvals is kept); --approval files are signed approvals delivered
apart from their envelope, attached to the envelope they name; --receipt files are
receipts, matched to their packets by digest; --outcome and --reason files are the results
the receipts hash. With --audit-log, each step gets its packet_accepted record and its
inclusion proof in the tree of the log's checkpoint (--checkpoint, default LOG.checkpoint).
--registry adds a snapshot of the registry (informational: 'bundle verify' trusts its own
--registry).

Prints the bundle JSON (or writes it to --out). Exit codes: 0 created; 1 the audit log is
broken; 2 a usage error, an unreadable or malformed input, or no handoff of the workflow;
3 the audit log cannot be read, or --out cannot be written.`,
		Example: `  trusthandoff bundle create --task-id wf-1 --envelope plan.json --envelope write.json \
      --receipt r1.json --receipt r2.json --audit-log audit.log --registry reg.json --out wf-1.bundle.json
  trusthandoff bundle create --correlation-id pkt-1 --envelope env.json --audit-log audit.log`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var wf bundle.Workflow
			switch {
			case (f.taskID == "") == (f.correlationID == ""):
				return usageErr("give exactly one of --task-id and --correlation-id")
			case f.taskID != "":
				wf = bundle.Workflow{Kind: bundle.ByTaskID, ID: f.taskID}
			default:
				wf = bundle.Workflow{Kind: bundle.ByCorrelation, ID: f.correlationID}
			}
			if len(f.envelopes) == 0 {
				return usageErr("--envelope is required (once per envelope file)")
			}
			var in bundle.Input
			var err error
			for _, set := range []struct {
				flag  string
				files []string
				dst   *[][]byte
			}{
				{"envelope", f.envelopes, &in.Envelopes}, {"approval", f.approvals, &in.Approvals},
				{"receipt", f.receipts, &in.Receipts}, {"outcome", f.outcomes, &in.Outcomes}, {"reason", f.reasons, &in.Reasons},
			} {
				if *set.dst, err = readFiles(set.flag, set.files); err != nil {
					return err
				}
			}
			if f.registryFile != "" {
				if _, err := loadRegistry(f.registryFile); err != nil {
					return err
				}
				if in.Registry, err = os.ReadFile(f.registryFile); err != nil {
					return usageErr("--registry: %v", err)
				}
			}
			if f.checkpoint != "" && f.auditLog == "" {
				return usageErr("--checkpoint needs --audit-log")
			}
			if f.auditLog != "" {
				if in.Log, err = audit.ReadLog(f.auditLog); err != nil {
					if errors.Is(err, audit.ErrBroken) {
						return &exitError{code: exitRejected, err: fmt.Errorf("--audit-log: %w", err)}
					}
					return unavailable(fmt.Errorf("--audit-log: %w", err))
				}
				cp := f.checkpoint
				if cp == "" {
					cp = audit.CheckpointPath(f.auditLog)
				}
				if in.Checkpoint, err = os.ReadFile(cp); err != nil {
					return usageErr("--checkpoint: %v", err)
				}
			}
			b, err := bundle.Create(wf, in)
			if err != nil {
				return usageErr("%v", err)
			}
			out, err := b.Marshal()
			if err != nil {
				return err
			}
			if f.out != "" {
				if err := os.WriteFile(f.out, out, 0o644); err != nil {
					return unavailable(fmt.Errorf("--out: %w", err))
				}
				fmt.Fprintf(c.ErrOrStderr(), "trusthandoff: bundle of %d step(s) written to %s\n", len(b.Steps), f.out)
				return nil
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.taskID, "task-id", "", "the workflow: handoffs whose packets carry this task_id")
	fl.StringVar(&f.correlationID, "correlation-id", "", "the workflow: handoffs whose acceptance the audit log recorded with this correlation_id")
	fl.StringArrayVar(&f.envelopes, "envelope", nil, "an envelope file (repeat)")
	fl.StringArrayVar(&f.approvals, "approval", nil, "a signed approval file delivered apart from its envelope (repeat)")
	fl.StringArrayVar(&f.receipts, "receipt", nil, "a receipt file (repeat)")
	fl.StringArrayVar(&f.outcomes, "outcome", nil, "an outcome file a receipt hashes (repeat)")
	fl.StringArrayVar(&f.reasons, "reason", nil, "a reason file a receipt hashes (repeat)")
	fl.StringVar(&f.auditLog, "audit-log", "", "the audit log the handoffs were verified into")
	fl.StringVar(&f.checkpoint, "checkpoint", "", "the log's signed checkpoint (default LOG.checkpoint)")
	fl.StringVar(&f.registryFile, "registry", "", "a registry file to include as a snapshot")
	fl.StringVar(&f.out, "out", "", "write the bundle here instead of stdout")
	return c
}

// maxObjectFile bounds one input object file of bundle create.
const maxObjectFile = 16 << 20

func readFiles(flag string, names []string) ([][]byte, error) {
	out := make([][]byte, 0, len(names))
	for _, name := range names {
		data, err := readFileLimited(name, maxObjectFile)
		if err != nil {
			return nil, usageErr("--%s: %v", flag, err)
		}
		out = append(out, data)
	}
	return out, nil
}

func readFileLimited(name string, limit int64) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", name, limit)
	}
	return data, nil
}

type bundleVerifyFlags struct {
	registry, logKey, logKeyFile string
	policyFile, format, out      string
	withoutAudit, bundleRegistry bool
	strict                       bool
}

func bundleVerifyCmd() *cobra.Command {
	var f bundleVerifyFlags
	c := &cobra.Command{
		Use:   "verify BUNDLE|- --registry REG [--log-key VKEY | --log-key-file F] [--policy FILE] [--strict] [--format json|text|html] [--out PATH]",
		Short: "Verify a workflow bundle offline and report every step",
		Long: `Verify a workflow bundle offline against the registry you trust (--registry) and the audit
log's key (--log-key VKEY, as 'audit checkpoint --show-key' prints it, or --log-key-file).
Without a log key the audit records are still proven against the bundle's checkpoint, but
who signed the checkpoint is not checked (a warning says so, and the report's checkpoint
has "authenticated": false); everything else is checked the same. For every step: the step is new and of the bundle's workflow; its audit records are proven
in the checkpoint's tree, which the log key signed, and one records its acceptance; the
handoff verifies through the whole pipeline (a dry run, consuming nothing) as of the time
its acceptance was logged (identity, signature, time, capability chain, depth, approvals
where required); its receipt is the packet's receiver's, bound to the packet's digest,
executed inside the packet's validity and before any capability of its chain expired,
matching the carried outcome, with a nonce no earlier receipt of the same executor key
used; and every result it depends on is the verified receipt of an earlier step.

--policy FILE and --strict apply the receivers' policy (its "as" is ignored: each step is
verified as its own receiver). --without-audit accepts bundles without audit records (a
step's time is then its receipt's started_at). --use-bundle-registry verifies against the
bundle's own snapshot instead of --registry: that proves consistency, not identity.

Prints the report (JSON by default; text; or a self-contained HTML page with the delegation
graph) on stdout or to --out. Exit codes: 0 the bundle verifies; 1 it does not (malformed
included; each failure names its step, problem and reason); 2 a usage error (bad flags, a
missing file, an unreadable registry, key or policy); 3 --out cannot be written.`,
		Example: `  trusthandoff bundle verify wf-1.bundle.json --registry reg.json --log-key "$(cat audit.vkey)"
  trusthandoff bundle verify wf-1.bundle.json --registry reg.json --log-key-file audit.vkey --format html --out wf-1.html
  trusthandoff bundle verify - --registry reg.json --without-audit < wf-1.bundle.json
  trusthandoff bundle verify wf-1.bundle.json --registry reg.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if f.format != "json" && f.format != "text" && f.format != "html" {
				return usageErr("--format must be json, text or html")
			}
			opts := []bundle.Option{}
			var reg bundle.Registry
			switch {
			case f.registry != "" && f.bundleRegistry:
				return usageErr("give --registry or --use-bundle-registry, not both")
			case f.registry != "":
				r, err := loadRegistry(f.registry)
				if err != nil {
					return err
				}
				reg = r
			case f.bundleRegistry:
				fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: --use-bundle-registry trusts the bundle's own registry snapshot: this proves consistency, not identity")
				opts = append(opts, bundle.WithBundleRegistry())
			default:
				return usageErr("--registry is required (or --use-bundle-registry)")
			}
			key := f.logKey
			if f.logKeyFile != "" {
				if key != "" {
					return usageErr("give --log-key or --log-key-file, not both")
				}
				data, err := readFileLimited(f.logKeyFile, 4096)
				if err != nil {
					return usageErr("--log-key-file: %v", err)
				}
				key = strings.TrimSpace(string(data))
			}
			if key != "" {
				if _, err := note.NewVerifier(key); err != nil {
					return usageErr("--log-key: not a note verifier key (name+id+key): %v", err)
				}
				opts = append(opts, bundle.WithLogKey(key))
			} else if !f.withoutAudit {
				fmt.Fprintln(c.ErrOrStderr(), "trusthandoff: warning: no --log-key: the audit records are proven against the bundle's checkpoint, but not who signed it")
				opts = append(opts, bundle.WithUnsignedCheckpoint())
			}
			if f.withoutAudit {
				opts = append(opts, bundle.WithoutAudit())
			}
			vopts, err := f.verifierOptions(c)
			if err != nil {
				return err
			}
			opts = append(opts, bundle.WithVerifierOptions(vopts...))
			data, err := readInput(c, args, bundle.DefaultMaxBytes+1)
			if err != nil {
				return err
			}
			var rep *bundle.Report
			b, perr := bundle.Parse(data, bundle.Limits{})
			if perr != nil {
				rep = bundle.MalformedReport(perr)
			} else if rep, err = bundle.Verify(c.Context(), b, reg, opts...); err != nil && !errors.Is(err, bundle.ErrInvalid) {
				return err
			}
			if err := writeReport(c, rep, f.format, f.out); err != nil {
				return err
			}
			if !rep.OK {
				return &exitError{code: exitRejected}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.registry, "registry", "", "the agent registry to verify against (the trust root)")
	fl.BoolVar(&f.bundleRegistry, "use-bundle-registry", false, "verify against the bundle's own registry snapshot (consistency, not identity)")
	fl.StringVar(&f.logKey, "log-key", "", "the audit log's note verifier key (name+id+key)")
	fl.StringVar(&f.logKeyFile, "log-key-file", "", "a file holding the audit log's note verifier key")
	fl.BoolVar(&f.withoutAudit, "without-audit", false, "accept steps without audit records and a bundle without a checkpoint")
	fl.StringVar(&f.policyFile, "policy", "", "the receivers' policy file (YAML or JSON); its \"as\" is ignored")
	fl.BoolVar(&f.strict, "strict", false, "strict TTL mode for every handoff (overrides the policy's)")
	fl.StringVar(&f.format, "format", "json", "report format: json, text or html")
	fl.StringVar(&f.out, "out", "", "write the report here instead of stdout")
	return c
}

// verifierOptions turns --policy and --strict into the handoffs' verify options.
func (f *bundleVerifyFlags) verifierOptions(c *cobra.Command) ([]verify.Option, error) {
	var pol *policy.Policy
	if f.policyFile != "" {
		p, err := policy.Load(f.policyFile)
		if err != nil {
			return nil, usageErr("--policy: %v", err)
		}
		pol = p
	}
	s := pol.Settings()
	s.As = "" // a bundle spans receivers: each step is verified as its own
	if c.Flags().Changed("strict") {
		s.Strict = f.strict
	}
	opts := s.Options()
	if pol != nil {
		opts = append(opts, verify.WithActionPolicy(pol))
	}
	return opts, nil
}

func writeReport(c *cobra.Command, rep *bundle.Report, format, out string) error {
	var buf bytes.Buffer
	switch format {
	case "html":
		if err := rep.WriteHTML(&buf); err != nil {
			return err
		}
	case "text":
		rep.WriteText(&buf)
	default:
		var sub cobra.Command
		sub.SetOut(&buf)
		if err := printJSON(&sub, rep); err != nil {
			return err
		}
	}
	if out == "" {
		_, err := c.OutOrStdout().Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return unavailable(fmt.Errorf("--out: %w", err))
	}
	return nil
}
