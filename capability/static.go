package capability

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// StaticRegistry is a fixed map of agent ids to one key each, valid at every instant: the
// reference's registry shape ({agent_id: SPKI PEM}), for offline verification, tests and
// examples. Keys are parsed once, when it is built, so verification never touches PEM.
type StaticRegistry struct {
	keys map[string][ed25519.PublicKeySize]byte
}

var _ Registry = (*StaticRegistry)(nil)

// NewStaticRegistry parses pems (agent id → canonical Ed25519 SPKI PEM).
func NewStaticRegistry(pems map[string]string) (*StaticRegistry, error) {
	r := &StaticRegistry{keys: make(map[string][ed25519.PublicKeySize]byte, len(pems))}
	for agent, text := range pems {
		pub, err := parsePublicKey(text)
		if err != nil {
			return nil, fmt.Errorf("capability: registry key of %s: %w", agent, err)
		}
		r.keys[agent] = [ed25519.PublicKeySize]byte(pub)
	}
	return r, nil
}

// KeyValid reports whether pub is agentID's key. The instant is ignored.
func (r *StaticRegistry) KeyValid(agentID string, pub ed25519.PublicKey, _ time.Time) bool {
	k, ok := r.keys[agentID]
	return ok && len(pub) == ed25519.PublicKeySize && [ed25519.PublicKeySize]byte(pub) == k
}
