package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

func keygenCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen --out KEY",
		Short: "Generate an Ed25519 agent key",
		Long: `Generate an Ed25519 agent key. The private key is written as PKCS#8 PEM to KEY with
mode 0600 (an existing file is never overwritten) and the public key as SPKI PEM to KEY.pub.
Prints {"agent_id", "public_key_pem"}.`,
		Example: "  trusthandoff keygen --out alice.key",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out is required")
			}
			if _, err := os.Lstat(out + ".pub"); err == nil {
				return usageErr("%s.pub already exists; refusing to overwrite it", out)
			}
			key, err := identity.Generate()
			if err != nil {
				return err
			}
			if err := identity.WritePrivateKeyFile(out, key); err != nil {
				return usageErr("%v", err)
			}
			pemText := identity.PublicKeyPEM(key.Public().(ed25519.PublicKey))
			pub, err := os.OpenFile(out+".pub", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err == nil {
				_, err = pub.WriteString(pemText)
				err = errors.Join(err, pub.Close())
			}
			if err != nil {
				return usageErr("writing %s.pub: %v", out, err)
			}
			return printJSON(c, map[string]string{"agent_id": identity.AgentID(pemText), "public_key_pem": pemText})
		},
	}
	c.Flags().StringVar(&out, "out", "", "private key file to create (mode 0600); the public key goes to FILE.pub")
	return c
}

// loadSigner reads a private key file: a regular file (never a FIFO or device, refused
// without blocking) with mode 0600.
func loadSigner(path string) (*identity.KeySigner, error) {
	if path == "" {
		return nil, usageErr("--key is required")
	}
	key, err := identity.LoadPrivateKeyFile(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return identity.NewKeySigner(key), nil
}

// readPublicKey reads an SPKI PEM public key file: a regular file (never a FIFO or device,
// refused without blocking) holding one canonical Ed25519 key that is not of small order.
func readPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := identity.ReadKeyFile(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	pub, err := identity.ParsePublicKeyPEM(string(data))
	if err != nil {
		return nil, usageErr("%s: %v", path, err)
	}
	return pub, nil
}

func registryCmd() *cobra.Command {
	var auditLog auditLogFlags // of whichever subcommand runs
	c := &cobra.Command{
		Use:   "registry",
		Short: "Manage the agent registry file (agent id -> public keys, roles)",
		Long: `Manage the agent registry: a JSON file mapping agent ids to their public keys (with
validity windows for rotation), roles (approver) and revocation. Updates are atomic and locked.`,
	}
	var reg, pubFile, agentID, role, notBefore string
	add := &cobra.Command{
		Use:   "add --registry REG --public-key PEM_FILE [--agent-id ID] [--role approver]",
		Short: "Register a public key (the file is created when missing)",
		Long: `Register a public key (the registry file is created when missing). The key file must be a
regular file holding one Ed25519 SPKI PEM in canonical form. Keys of small order (the
identity point and the other torsion points, under which anyone can forge signatures),
non-canonical encodings, and a key already registered for another agent are refused with
exit 2.`,
		Example: "  trusthandoff registry add --registry reg.json --public-key alice.key.pub\n  trusthandoff registry add --registry reg.json --public-key olga.key.pub --role approver",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if reg == "" || pubFile == "" {
				return usageErr("--registry and --public-key are required")
			}
			pub, err := readPublicKey(pubFile)
			if err != nil {
				return err
			}
			roles := []string{}
			switch role {
			case "":
			case registry.RoleApprover:
				roles = []string{role}
			default:
				return usageErr("unknown role %q (known: approver)", role)
			}
			var nb *time.Time
			if notBefore != "" {
				t, err := time.Parse(time.RFC3339Nano, notBefore)
				if err != nil {
					return usageErr("--not-before: %v", err)
				}
				nb = &t
			}
			var id string
			if err := grantRegistry(c, &auditLog, reg, func(r *registry.Registry) (audit.Event, error) {
				var err error
				if id, err = r.Add(agentID, pub, roles, nb); err != nil {
					return audit.Event{}, err
				}
				return audit.RegistryChangeEvent("trusthandoff-cli", audit.RegistryAdd, id, pub, roles, time.Now(), "operator"), nil
			}); err != nil {
				return err
			}
			return printJSON(c, map[string]any{"agent_id": id, "roles": roles, "registry": reg})
		},
	}
	add.Flags().StringVar(&reg, "registry", "", "registry file")
	add.Flags().StringVar(&pubFile, "public-key", "", "SPKI PEM public key file (keygen writes KEY.pub)")
	add.Flags().StringVar(&agentID, "agent-id", "", "agent id (default: derived from the key, as the reference does)")
	add.Flags().StringVar(&role, "role", "", "role to grant: approver")
	add.Flags().StringVar(&notBefore, "not-before", "", "RFC 3339 instant from which the key is valid (default: the start of time)")
	auditLog.register(add, "record the change in this tamper-evident log first (a registry_change event); not recorded, not made")

	var overlap time.Duration
	var at string
	rotate := &cobra.Command{
		Use:   "rotate --registry REG --agent-id ID --public-key NEW_PEM [--overlap 30s]",
		Short: "Rotate an agent's key; the old key stays valid for the overlap window",
		Long: `Rotate an agent's key: NEW_PEM is valid from --at, and the keys valid then stay valid until
--at + --overlap (flagged token_overlap_used). The new key is checked as registry add checks
it: small-order, non-canonical and already registered keys are refused with exit 2.`,
		Example: "  trusthandoff registry rotate --registry reg.json --agent-id agent:abc --public-key alice2.key.pub --overlap 30s",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if reg == "" || pubFile == "" || agentID == "" {
				return usageErr("--registry, --agent-id and --public-key are required")
			}
			pub, err := readPublicKey(pubFile)
			if err != nil {
				return err
			}
			when, err := parseAt(at)
			if err != nil {
				return err
			}
			if err := grantRegistry(c, &auditLog, reg, func(r *registry.Registry) (audit.Event, error) {
				if err := r.Rotate(agentID, pub, when, overlap); err != nil {
					return audit.Event{}, err
				}
				a, _ := r.Agent(agentID)
				return audit.RegistryChangeEvent("trusthandoff-cli", audit.RegistryRotate, agentID, pub, a.Roles, when, "operator"), nil
			}); err != nil {
				return err
			}
			return printJSON(c, map[string]any{"agent_id": agentID, "rotated_at": when.UTC(), "overlap_until": when.Add(overlap).UTC()})
		},
	}
	rotate.Flags().StringVar(&reg, "registry", "", "registry file")
	rotate.Flags().StringVar(&agentID, "agent-id", "", "agent whose key rotates")
	rotate.Flags().StringVar(&pubFile, "public-key", "", "the new SPKI PEM public key file")
	rotate.Flags().DurationVar(&overlap, "overlap", registry.DefaultOverlap, "how long the old key stays valid (max 300s)")
	rotate.Flags().StringVar(&at, "at", "", "rotation instant, RFC 3339 (default: now)")
	auditLog.register(rotate, "record the change in this tamper-evident log first (a registry_change event); not recorded, not made")

	revoke := &cobra.Command{
		Use:     "revoke --registry REG --agent-id ID",
		Short:   "Revoke an agent in the registry: its keys and what it issued stop verifying",
		Example: "  trusthandoff registry revoke --registry reg.json --agent-id agent:abc",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if reg == "" || agentID == "" {
				return usageErr("--registry and --agent-id are required")
			}
			when, err := parseAt(at)
			if err != nil {
				return err
			}
			sink, err := auditLog.open()
			if err != nil {
				return err
			}
			defer closeSink(sink)
			if err := registry.Update(reg, func(r *registry.Registry) error { return r.Revoke(agentID, when) }); err != nil {
				return usageErr("%v", err)
			}
			if err := printJSON(c, map[string]any{"agent_id": agentID, "revoked_at": when.UTC()}); err != nil {
				return err
			}
			// A revocation is never held up by the log: it is in force, then recorded.
			if err := emitChange(c, sink, audit.RegistryChangeEvent("trusthandoff-cli", audit.RegistryRevoke, agentID, nil, nil, when, "operator")); err != nil {
				return unavailable(fmt.Errorf("revoked, but the audit log did not record it: %w", err))
			}
			return nil
		},
	}
	revoke.Flags().StringVar(&reg, "registry", "", "registry file")
	revoke.Flags().StringVar(&agentID, "agent-id", "", "agent to revoke")
	revoke.Flags().StringVar(&at, "at", "", "revocation instant, RFC 3339 (default: now)")
	auditLog.register(revoke, "then record the revocation in this tamper-evident log (a registry_change event)")

	list := &cobra.Command{
		Use:     "list --registry REG",
		Short:   "Print the registry",
		Example: "  trusthandoff registry list --registry reg.json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := loadRegistry(reg)
			if err != nil {
				return err
			}
			out, err := r.Marshal()
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(out)
			return err
		},
	}
	list.Flags().StringVar(&reg, "registry", "", "registry file")
	c.AddCommand(add, rotate, revoke, list)
	return c
}

func loadRegistry(path string) (*registry.Registry, error) {
	if path == "" {
		return nil, usageErr("--registry is required")
	}
	r, err := registry.Load(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	// Registered keys are precomputed once: same decisions as crypto/ed25519, faster.
	if err := r.SetVerifierFactory(fastverify.New); err != nil {
		return nil, usageErr("%v", err)
	}
	return r, nil
}

// parseAt parses an --at flag (RFC 3339); empty means now.
func parseAt(at string) (time.Time, error) {
	if at == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, usageErr("--at wants an RFC 3339 instant such as 2026-04-01T12:00:30Z: %v", err)
	}
	return t, nil
}

// grantRegistry applies a change that grants authority to the registry file reg: fn makes
// it and returns its event, which is appended to --audit-log (when given) before the file
// is written. A change that cannot be recorded is not made (exit 3); fn's refusal is a
// usage error.
func grantRegistry(c *cobra.Command, auditLog *auditLogFlags, reg string, fn func(*registry.Registry) (audit.Event, error)) error {
	sink, err := auditLog.open()
	if err != nil {
		return err
	}
	defer closeSink(sink)
	var unrecorded error
	err = registry.Update(reg, func(r *registry.Registry) error {
		ev, err := fn(r)
		if err != nil {
			return err
		}
		unrecorded = emitChange(c, sink, ev)
		return unrecorded
	})
	if unrecorded != nil {
		return unavailable(fmt.Errorf("the audit log did not record the change, so it was not made: %w", unrecorded))
	}
	if err != nil {
		return usageErr("%v", err)
	}
	return nil
}
