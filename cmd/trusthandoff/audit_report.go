package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit/sentinel"
	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
)

func auditReportCmd() *cobra.Command {
	var cpFile, format, outPath string
	var noCheckpoint bool
	var key logKeyFlag
	var witnessKeys witnessKeysFlag
	var burstWindow, nearExpiry, skew time.Duration
	var burstCount, maxTimeline int
	var depthLimit int64
	c := &cobra.Command{
		Use:   "report LOG",
		Short: "Verify an audit log, then report what a reviewer should look at (Sentinel): text, JSON or HTML",
		Long: `Verify the audit log exactly as 'audit verify' does (its chain, the signed checkpoint
LOG.checkpoint or --checkpoint CP under the log key LOG.key or --log-key, and with
--witness-key each witness's cosignature; --no-checkpoint checks the chain alone), then
analyse its records and report the findings, each citing the records (seq) behind it:

  replay_detected          a handoff presented again after its nonce was spent (dry runs left out)
  capability_stale         a handoff under an expired capability
  token_overlap_used       a key used inside its rotation overlap window
  ai_generated_payload     a payload its sender declared AI-generated
  signature_failure_burst  --burst-count or more invalid_signature / public_key_mismatch
                           rejections claiming one sender within --burst-window
  escalation_attempt       capability_escalation or action_not_authorized rejections
  approval_invalid         an approval that did not verify
  approval_denied          a handoff a human denied (approval_denied records)
  approval_reused          one approval_id attached to different packets
  revoked_authority        a revoked agent or capability used (agent_revoked, capability_revoked)
  wrong_recipient          a handoff delivered to a verifier it is not addressed to
  delegation_depth         chain_depth above --depth-limit, depth_exceeded or delegation_loop
  issued_in_future         issued_at later than the record's time plus --skew
  near_expiry_burst        --burst-count or more accepts of one sender within --burst-window,
                           each within --near-expiry of its expires_at
  accepted_after_revocation a handoff accepted after the log recorded the revocation of its
                           sender or of a capability of its chain (a node that had not
                           learnt of it yet, or did not check)

The report also holds the delegation graph (agents, and handoffs between them counted by
decision: accepted, rejected, dry run) and the timeline of every record.

--format text (default) is for people, findings first; json is the whole report with
stable field names (spec/sentinel.md); html is one self-contained page (no network
access: its Content-Security-Policy forbids every load) with the graph and the timeline
(the first --max-html-timeline records). Every value from the log is escaped.
--out PATH writes the report atomically to PATH instead of stdout.

Exit codes: 0 the log is intact and the report written (findings do not change the exit
code); 1 the log is broken (the first broken record is named on stderr, no report is
written); 2 usage (LOG or CP missing, no log key, a bad flag); 3 LOG cannot be read, or
--out cannot be written.`,
		Example: `  trusthandoff audit report audit.jsonl
  trusthandoff audit report audit.jsonl --format html --out report.html
  trusthandoff audit report audit.jsonl --format json | jq '.findings[] | {rule, agent, seqs}'
  trusthandoff audit report audit.jsonl --checkpoint saved.checkpoint --log-key "$(cat audit.vkey)" --burst-count 5 --burst-window 10s`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			write, err := reportWriter(format)
			if err != nil {
				return err
			}
			v, err := verifyAuditLog(path, cpFile, noCheckpoint, &key, witnessKeys)
			if err != nil {
				return err
			}
			if v.broken != nil {
				msg := v.broken.Error()
				if first, ok := v.out["first_broken"].(uint64); ok {
					msg = fmt.Sprintf("audit log %s is broken at record %d, no report: %s", path, first, msg)
				} else {
					msg = fmt.Sprintf("audit log %s is broken, no report: %s", path, msg)
				}
				return &exitError{code: exitRejected, err: errors.New(msg)}
			}
			info := sentinel.LogInfo{Path: path, Records: v.log.Size(), LastHash: lastHash(v.log), Verified: true}
			if root, err := v.log.Root(v.log.Size()); err == nil {
				info.Root = root.String()
			}
			if v.cp != nil {
				info.Checkpoint = &sentinel.CheckpointInfo{Origin: v.cp.Origin, Size: v.cp.Size, Root: v.cp.Root.String()}
				info.Uncovered = v.log.Size() - v.cp.Size
			}
			for _, w := range v.witnesses {
				if name, ok := w["name"].(string); ok {
					info.Witnesses = append(info.Witnesses, name)
				}
			}
			rep := sentinel.AnalyzeLog(v.log, info,
				sentinel.WithBurst(burstWindow, burstCount), sentinel.WithDepthLimit(depthLimit),
				sentinel.WithNearExpiry(nearExpiry), sentinel.WithSkew(skew),
				sentinel.WithMaxHTMLTimeline(maxTimeline))
			var buf bytes.Buffer
			if err := write(rep, &buf); err != nil {
				return unavailable(err)
			}
			if outPath == "" || outPath == "-" {
				if _, err := c.OutOrStdout().Write(buf.Bytes()); err != nil {
					return unavailable(err)
				}
				return nil
			}
			if err := atomicfile.Write(outPath, buf.Bytes(), 0o644); err != nil {
				return unavailable(fmt.Errorf("--out %s: %w", outPath, err))
			}
			return nil
		},
	}
	witnessKeys.register(c)
	c.Flags().StringVar(&cpFile, "checkpoint", "", "verify against this signed checkpoint instead of LOG.checkpoint")
	c.Flags().BoolVar(&noCheckpoint, "no-checkpoint", false, "verify the chain alone (cannot detect the newest records edited or removed)")
	key.register(c, " (default: derived from LOG.key)")
	c.Flags().StringVar(&format, "format", "text", "text, json or html")
	c.Flags().StringVar(&outPath, "out", "", "write the report to this file (atomically) instead of stdout")
	c.Flags().DurationVar(&burstWindow, "burst-window", sentinel.DefaultBurstWindow, "the window of the burst rules")
	c.Flags().IntVar(&burstCount, "burst-count", sentinel.DefaultBurstCount, "how many records of one sender within --burst-window make a burst")
	c.Flags().Int64Var(&depthLimit, "depth-limit", sentinel.DefaultDepthLimit, "the deepest chain_depth not reported")
	c.Flags().DurationVar(&nearExpiry, "near-expiry", sentinel.DefaultNearExpiry, "an accept this close to expires_at counts as near expiry")
	c.Flags().DurationVar(&skew, "skew", sentinel.DefaultSkew, "how far issued_at may lie after the record's time before it is reported")
	c.Flags().IntVar(&maxTimeline, "max-html-timeline", sentinel.DefaultMaxHTMLTimeline, "the most timeline entries the HTML report shows (JSON and text keep all)")
	return c
}

// reportWriter returns the renderer of a --format.
func reportWriter(format string) (func(*sentinel.Report, *bytes.Buffer) error, error) {
	switch strings.ToLower(format) {
	case "text", "":
		return func(r *sentinel.Report, b *bytes.Buffer) error { return r.WriteText(b) }, nil
	case "json":
		return func(r *sentinel.Report, b *bytes.Buffer) error { return r.WriteJSON(b) }, nil
	case "html":
		return func(r *sentinel.Report, b *bytes.Buffer) error { return r.WriteHTML(b) }, nil
	}
	return nil, usageErr("--format %q: want text, json or html", format)
}
