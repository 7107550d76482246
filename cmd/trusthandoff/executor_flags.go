package main

import (
	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// executorFlags are the flags of the commands by which an executor signs what came of a
// handoff (attest, receipt sign): its key, its registered agent id after a key rotation,
// and the status it reports.
type executorFlags struct {
	key, agentID, status string
}

// register adds --key, --agent-id and --status; who names the signer in the help.
func (f *executorFlags) register(c *cobra.Command, who string) {
	fl := c.Flags()
	fl.StringVar(&f.key, "key", "", who+" private key file (mode 0600)")
	fl.StringVar(&f.agentID, "agent-id", "", who+" registered agent id, when it is not the key's own (after a key rotation)")
	fl.StringVar(&f.status, "status", "OK", "OK, ERROR, PARTIAL, REJECTED or TIMEOUT")
}

// checkAgentID is a usage error when --agent-id is given and is not an agent id.
func (f *executorFlags) checkAgentID() error {
	if f.agentID == "" {
		return nil
	}
	if err := packet.CheckAgentID(f.agentID); err != nil {
		return usageErr("--agent-id: %v", err)
	}
	return nil
}

// statusValue returns --status, a usage error unless it is one of the five statuses
// (attestations and receipts share them).
func (f *executorFlags) statusValue() (attest.Status, error) {
	st := attest.Status(f.status)
	if !st.Valid() {
		return "", usageErr("--status must be one of OK, ERROR, PARTIAL, REJECTED, TIMEOUT")
	}
	return st, nil
}
