// Package registry maps agent ids to their Ed25519 public keys, with validity windows
// (key rotation with an overlap window), roles (approver) and agent revocation.
//
// A registry is a JSON file (see Load and Save); an in-memory Registry indexes it for the
// verification hot path, where a key is matched by its exact SPKI PEM text, so no PEM is
// parsed per verification.
//
// Each registered key carries an identity.Verifier, built once when the key is loaded,
// added or rotated in, and handed to the pipeline in the Binding. The default is the
// standard library's crypto/ed25519.Verify. SetVerifierFactory swaps in a verifier that
// precomputes the key, such as fastverify.New, which verifies faster with the same
// accept/reject decisions:
//
//	reg, err := registry.Load(path)
//	...
//	err = reg.SetVerifierFactory(fastverify.New)
package registry

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// Roles an agent can hold.
const RoleApprover = "approver"

// Overlap window limits for key rotation.
const (
	DefaultOverlap = 30 * time.Second
	MaxOverlap     = 300 * time.Second
)

// Key is one registered public key of an agent and the window in which it is valid.
type Key struct {
	PublicKey string     `json:"public_key"`           // canonical SPKI PEM
	NotBefore *time.Time `json:"not_before,omitempty"` // nil: valid from the start of time
	NotAfter  *time.Time `json:"not_after,omitempty"`  // nil: no end
	// RotatedAt is set when the key was replaced; between RotatedAt and NotAfter it is
	// still accepted, and each use is flagged token_overlap_used.
	RotatedAt *time.Time `json:"rotated_at,omitempty"`

	pub ed25519.PublicKey
	ver identity.Verifier // built from pub by the registry's verifier factory
}

// Agent is one registered agent.
type Agent struct {
	Keys      []*Key     `json:"keys"`
	Roles     []string   `json:"roles,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// HasRole reports whether the agent holds role.
func (a *Agent) HasRole(role string) bool { return slices.Contains(a.Roles, role) }

// Registry is a set of agents. It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	agents  map[string]*Agent
	factory identity.VerifierFactory // nil: identity.NewStdVerifier
}

// SetVerifierFactory makes f build the Verifier of every registered key, now and for the
// keys Add and Rotate register later; nil restores the standard-library default
// (identity.NewStdVerifier). Every current key is rebuilt before SetVerifierFactory
// returns, so verification never pays for the precomputation. If f fails on any key (or
// returns no verifier) the registry is left unchanged and the error is returned.
//
// f must make exactly the accept/reject decisions of crypto/ed25519.Verify (see
// identity.Verifier); fastverify.New is tested to.
func (r *Registry) SetVerifierFactory(f identity.VerifierFactory) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	type update struct {
		k *Key
		v identity.Verifier
	}
	var updates []update
	for id, a := range r.agents {
		for _, k := range a.Keys {
			v, err := buildVerifier(f, k.pub)
			if err != nil {
				return fmt.Errorf("registry: agent %s: %w", id, err)
			}
			updates = append(updates, update{k, v})
		}
	}
	for _, u := range updates {
		u.k.ver = u.v
	}
	r.factory = f
	return nil
}

// buildVerifier runs f (nil: the standard library) on pub.
func buildVerifier(f identity.VerifierFactory, pub ed25519.PublicKey) (identity.Verifier, error) {
	if f == nil {
		f = identity.NewStdVerifier
	}
	v, err := f(pub)
	if err != nil {
		return nil, fmt.Errorf("verifier for key: %w", err)
	}
	if v == nil {
		return nil, fmt.Errorf("the verifier factory returned no verifier")
	}
	return v, nil
}

// New returns an empty registry.
func New() *Registry { return &Registry{agents: map[string]*Agent{}} }

// Add registers pub for agentID (derived from the key when empty) with roles, valid from
// notBefore (nil: the start of time). Adding a key an agent already has only merges roles.
// It refuses keys identity.CheckPublicKey refuses (small order, non-canonical, off the
// curve) and a key already registered for another agent: a key names one agent.
func (r *Registry) Add(agentID string, pub ed25519.PublicKey, roles []string, notBefore *time.Time) (string, error) {
	if err := identity.CheckPublicKey(pub); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	pemText := identity.PublicKeyPEM(pub)
	if agentID == "" {
		agentID = identity.AgentID(pemText)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ver, err := buildVerifier(r.factory, pub)
	if err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	if owner := r.ownerOf(pemText); owner != "" && owner != agentID {
		return "", fmt.Errorf("registry: this key is already registered for agent %s; a key belongs to one agent", owner)
	}
	a := r.agents[agentID]
	if a == nil {
		a = &Agent{}
		r.agents[agentID] = a
	}
	for _, role := range roles {
		if !a.HasRole(role) {
			a.Roles = append(a.Roles, role)
		}
	}
	slices.Sort(a.Roles)
	for _, k := range a.Keys {
		if k.PublicKey == pemText {
			return agentID, nil
		}
	}
	a.Keys = append(a.Keys, &Key{PublicKey: pemText, NotBefore: notBefore, pub: pub, ver: ver})
	return agentID, nil
}

// Rotate makes newPub the agent's current key from at, and keeps every key that is valid
// at that instant usable until at+overlap (the overlap window). Like Add, it refuses keys
// identity.CheckPublicKey refuses and keys registered for any agent already.
func (r *Registry) Rotate(agentID string, newPub ed25519.PublicKey, at time.Time, overlap time.Duration) error {
	if overlap < 0 || overlap > MaxOverlap {
		return fmt.Errorf("overlap %v is outside 0..%v", overlap, MaxOverlap)
	}
	if err := identity.CheckPublicKey(newPub); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	pemText := identity.PublicKeyPEM(newPub)
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.agents[agentID]
	if a == nil {
		return fmt.Errorf("agent %s is not registered", agentID)
	}
	switch owner := r.ownerOf(pemText); {
	case owner == agentID:
		return fmt.Errorf("agent %s already has this key", agentID)
	case owner != "":
		return fmt.Errorf("registry: this key is already registered for agent %s; a key belongs to one agent", owner)
	}
	ver, err := buildVerifier(r.factory, newPub)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	end := at.Add(overlap).UTC()
	rotated := at.UTC()
	for _, k := range a.Keys {
		if k.validAt(at) {
			k.RotatedAt = &rotated
			k.NotAfter = &end
		}
	}
	a.Keys = append(a.Keys, &Key{PublicKey: pemText, NotBefore: &rotated, pub: newPub, ver: ver})
	return nil
}

// Revoke revokes an agent from at: its keys and everything it signed stop verifying.
func (r *Registry) Revoke(agentID string, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.agents[agentID]
	if a == nil {
		return fmt.Errorf("agent %s is not registered", agentID)
	}
	if a.RevokedAt == nil {
		t := at.UTC()
		a.RevokedAt = &t
	}
	return nil
}

// Agent returns a copy of the agent's record.
func (r *Registry) Agent(agentID string) (Agent, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.agents[agentID]
	if !ok {
		return Agent{}, false
	}
	return *a, true
}

// IDs returns every agent id, sorted.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.agents))
	for id := range r.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Key) validAt(at time.Time) bool {
	return (k.NotBefore == nil || !at.Before(*k.NotBefore)) && (k.NotAfter == nil || at.Before(*k.NotAfter))
}

// Binding is the result of a successful Resolve.
type Binding struct {
	PublicKey ed25519.PublicKey
	// Verifier verifies signatures by PublicKey: the key's precomputed verifier for a
	// registered key, nil when there is none (SelfCertified), meaning crypto/ed25519.
	Verifier    identity.Verifier
	OverlapUsed bool // the key was rotated out and is inside its overlap window
}

// Resolve binds agentID to the key spelled pemText at instant at. Errors are
// *reason.Error: unknown_agent, agent_revoked, public_key_mismatch.
func (r *Registry) Resolve(agentID, pemText string, at time.Time) (Binding, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a := r.agents[agentID]
	if a == nil {
		return Binding{}, reason.New(reason.UnknownAgent, fmt.Sprintf("agent %s is not registered", agentID))
	}
	if a.RevokedAt != nil && !at.Before(*a.RevokedAt) {
		return Binding{}, reason.New(reason.AgentRevoked, fmt.Sprintf("agent %s was revoked at %s", agentID, a.RevokedAt.Format(time.RFC3339)))
	}
	for _, k := range a.Keys {
		if k.PublicKey != pemText {
			continue
		}
		if !k.validAt(at) {
			return Binding{}, reason.New(reason.PublicKeyMismatch, fmt.Sprintf("the key is registered for %s but not valid at %s", agentID, at.UTC().Format(time.RFC3339)))
		}
		return Binding{PublicKey: k.pub, Verifier: k.ver, OverlapUsed: k.RotatedAt != nil && !at.Before(*k.RotatedAt)}, nil
	}
	return Binding{}, reason.New(reason.PublicKeyMismatch, fmt.Sprintf("public_key is not a registered key of %s", agentID))
}

// KeyValid reports whether pub is a key of agentID valid at at, and the agent is not
// revoked then. It serves capability chain and approval verification.
func (r *Registry) KeyValid(agentID string, pub ed25519.PublicKey, at time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a := r.agents[agentID]
	if a == nil || (a.RevokedAt != nil && !at.Before(*a.RevokedAt)) {
		return false
	}
	for _, k := range a.Keys {
		if k.pub.Equal(pub) && k.validAt(at) {
			return true
		}
	}
	return false
}

// ValidKeyVerifier is KeyValid that also returns the key's Verifier (precomputed when
// the registry has a verifier factory), so that capability links and approvals signed by
// registered keys verify on the same path as packets.
func (r *Registry) ValidKeyVerifier(agentID string, pub ed25519.PublicKey, at time.Time) (identity.Verifier, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a := r.agents[agentID]
	if a == nil || (a.RevokedAt != nil && !at.Before(*a.RevokedAt)) {
		return nil, false
	}
	for _, k := range a.Keys {
		if k.pub.Equal(pub) && k.validAt(at) {
			return k.ver, true
		}
	}
	return nil, false
}

// HasRole reports whether agentID is registered with role.
func (r *Registry) HasRole(agentID, role string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a := r.agents[agentID]
	return a != nil && a.HasRole(role)
}

// SelfCertified is the registry-less mode of the reference: an agent id is valid for a key
// exactly when it is the id derived from that key. It binds no identity to anything outside
// the packet, so it proves only that the sender holds the key its id names; nobody holds the
// approver role. Use a Registry in production.
type SelfCertified struct{}

// Resolve accepts pemText for agentID when agentID is derived from it.
func (SelfCertified) Resolve(agentID, pemText string, _ time.Time) (Binding, error) {
	pub, err := identity.ParsePublicKeyPEM(pemText)
	if err != nil {
		return Binding{}, reason.Wrap(reason.MalformedEnvelope, "public_key", err)
	}
	if identity.AgentID(pemText) != agentID {
		return Binding{}, reason.New(reason.PublicKeyMismatch, fmt.Sprintf("from_agent %s is not the id of public_key (no registry: ids are self-certified)", agentID))
	}
	return Binding{PublicKey: pub}, nil
}

// KeyValid reports whether agentID is derived from pub.
func (SelfCertified) KeyValid(agentID string, pub ed25519.PublicKey, _ time.Time) bool {
	return len(pub) == ed25519.PublicKeySize && identity.AgentIDOf(pub) == agentID
}

// HasRole is always false: without a registry nobody is an approver.
func (SelfCertified) HasRole(string, string) bool { return false }
