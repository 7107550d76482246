package attest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/registry"
)

// Registry is what ResolveSigner needs from the agent registry: an agent's keys, and
// whether one of them speaks for the agent at an instant. *registry.Registry implements it.
type Registry interface {
	Agent(agentID string) (registry.Agent, bool)
	Resolve(agentID, publicKeyPEM string, at time.Time) (registry.Binding, error)
}

var _ Registry = (*registry.Registry)(nil)

// Signer is the registered agent an attestation is from, as ResolveSigner found it.
type Signer struct {
	AgentID   string
	PublicKey ed25519.PublicKey
	// OverlapUsed: the key was rotated out and is inside its overlap window.
	OverlapUsed bool
}

// ResolveSigner finds who signed a: the agent signed_by names, through the key of that
// agent whose fingerprint is the attestation's agent_pubkey_fingerprint (signed_by is not
// covered by the signature; the fingerprint is). The key must be valid at at and the agent
// not revoked in the registry then. It does not check the signature: VerifyRegistered does.
//
// Errors are *reason.Error values: unknown_agent (ErrUnknownSigner) when signed_by is not
// registered, public_key_mismatch (ErrKeyMismatch) when the agent has no key with that
// fingerprint valid at at, agent_revoked (ErrSignerRevoked) when the registry revoked it.
func ResolveSigner(a *Attestation, reg Registry, at time.Time) (Signer, error) {
	if a == nil {
		return Signer{}, malformed("no attestation")
	}
	if reg == nil {
		return Signer{}, errors.New("attest: no registry to resolve the signer in")
	}
	agent, ok := reg.Agent(a.SignedBy)
	if !ok {
		return Signer{}, reason.Wrap(reason.UnknownAgent, fmt.Sprintf("signed_by %s is not registered", truncate(a.SignedBy)), ErrUnknownSigner)
	}
	var lastErr error
	for _, k := range agent.Keys {
		if k == nil {
			continue
		}
		pub, err := identity.ParsePublicKeyPEM(k.PublicKey)
		if err != nil || identity.Fingerprint(pub) != a.Fingerprint {
			continue
		}
		b, err := reg.Resolve(a.SignedBy, k.PublicKey, at)
		if err != nil {
			lastErr = err
			continue // the same key may be registered twice, once valid
		}
		return Signer{AgentID: a.SignedBy, PublicKey: pub, OverlapUsed: b.OverlapUsed}, nil
	}
	if lastErr != nil {
		if reason.Of(lastErr, "") == reason.AgentRevoked {
			return Signer{}, reason.Wrap(reason.AgentRevoked, lastErr.Error(), ErrSignerRevoked)
		}
		return Signer{}, reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("the key of %s with the attestation's fingerprint is not valid at %s", a.SignedBy, at.UTC().Format(time.RFC3339)), ErrKeyMismatch)
	}
	return Signer{}, reason.Wrap(reason.PublicKeyMismatch, fmt.Sprintf("no registered key of %s has the attestation's fingerprint", a.SignedBy), ErrKeyMismatch)
}

// VerifyRegistered verifies a at now against the registry: ResolveSigner finds the
// signer's key, then every check of VerifyContext runs with signed_by bound to the
// registered agent id rather than to the id derived from the key, so an agent whose key
// was rotated (attest --agent-id) verifies. It returns the signer. Pass WithRevocations
// to reject a signer revoked in the revocation store too, and WithExpectedSigner to bind
// the signer.
func VerifyRegistered(ctx context.Context, a *Attestation, reg Registry, now time.Time, opts ...Option) (Signer, error) {
	if a != nil {
		if err := a.check(); err != nil {
			return Signer{}, err
		}
	}
	s, err := ResolveSigner(a, reg, now)
	if err != nil {
		return Signer{}, err
	}
	if err := verify(ctx, a, s.PublicKey, s.AgentID, now, opts); err != nil {
		return Signer{}, err
	}
	return s, nil
}
