package main

import (
	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/attest"
	"github.com/trusthandoff/trusthandoff-go/identity"
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

// signer is the one place where attest and receipt sign check the executor's key: it
// loads --key (a regular file, never a FIFO or device, with no group or other access: see
// loadSigner) and returns it with the agent id it signs as, --agent-id when given (a
// usage error unless it is an agent id), else the key's own id. Whether that id may sign
// is the signed object's rule: a receipt's executor must be the packet's to_agent
// (receipt.Sign), an attestation's signer is bound by its verifier's registry.
func (f *executorFlags) signer() (*identity.KeySigner, string, error) {
	if err := f.checkAgentID(); err != nil {
		return nil, "", err
	}
	s, err := loadSigner(f.key)
	if err != nil {
		return nil, "", err
	}
	if f.agentID != "" {
		return s, f.agentID, nil
	}
	return s, identity.AgentIDOf(s.Public()), nil
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
