package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/server"
)

func tokenCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage the bearer tokens of 'trusthandoff serve'",
	}
	c.AddCommand(tokenAddCmd())
	return c
}

func tokenAddCmd() *cobra.Command {
	var file, agentID string
	c := &cobra.Command{
		Use:   "add --tokens FILE --agent-id ID",
		Short: "Create a bearer token for an agent; print it once",
		Long: `Create a random bearer token for ID, store only its SHA-256 in FILE (a JSON object of
"sha256:HEX" to agent id, created mode 0600 when missing; written atomically under a lock),
and print {"agent_id", "token"} once: the token cannot be recovered from the file. Give the
file to 'trusthandoff serve --agent-tokens FILE'.`,
		Example: `  trusthandoff token add --tokens tokens.json --agent-id agent:iaecbyn/Y6DtD2i1 | jq -r .token > researcher.token`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if file == "" || agentID == "" {
				return usageErr("--tokens and --agent-id are required")
			}
			if err := packet.CheckAgentID(agentID); err != nil {
				return usageErr("--agent-id: %v", err)
			}
			tok, err := server.NewToken()
			if err != nil {
				return unavailable(err)
			}
			if err := updateTokens(file, func(t server.Tokens) { t[server.HashToken(tok)] = agentID }); err != nil {
				return err
			}
			return printJSON(c, map[string]string{"agent_id": agentID, "token": tok})
		},
	}
	c.Flags().StringVar(&file, "tokens", "", "tokens file (created when missing)")
	c.Flags().StringVar(&agentID, "agent-id", "", "the agent the token authenticates")
	return c
}

// updateTokens applies fn to the tokens file under an exclusive lock and rewrites it
// atomically (temporary file, fsync, rename) with mode 0600.
func updateTokens(path string, fn func(server.Tokens)) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return usageErr("--tokens: %v", err)
	}
	defer lock.Close()
	if err := filelock.Lock(lock); err != nil {
		return unavailable(fmt.Errorf("lock %s: %w", path, err))
	}
	t := server.Tokens{}
	data, err := readSecretFile(path, false)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return usageErr("--tokens: %v", err)
	default:
		if t, err = server.ParseTokens(data); err != nil {
			return usageErr("--tokens %s: %v", path, err)
		}
	}
	fn(t)
	out, err := t.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, out, 0o600); err != nil {
		return unavailable(err)
	}
	return nil
}
