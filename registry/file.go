package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/internal/atomicfile"
	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

// fileFormat is the registry file: {"version": 1, "agents": {id: Agent}}. Marshal writes
// it with encoding/json; Parse reads it with the strict parser.
type fileFormat struct {
	Version int               `json:"version"`
	Agents  map[string]*Agent `json:"agents"`
}

// MaxFileSize bounds the registry file Parse accepts (about 200,000 agents).
const MaxFileSize = 64 << 20

// Load reads a registry file and parses it with Parse.
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes registry JSON. The registry is the trust root, so it is parsed as strictly
// as a packet: one JSON value (no trailing data), no duplicate object keys at any level (so
// no agent appears twice), no unknown fields, exact JSON types, version 1, at least one key
// per agent, every key a canonical Ed25519 SPKI PEM that identity.ParsePublicKeyPEM accepts
// (no small-order or non-canonical keys), no key twice within an agent and no key
// registered for two agents (a key names one agent). Optional fields may be null.
func Parse(data []byte) (*Registry, error) {
	v, err := canonical.Parse(data, canonical.Limits{MaxBytes: MaxFileSize})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if v.Kind != canonical.Object {
		return nil, fmt.Errorf("registry: the file must be a JSON object, not %s", v.Kind)
	}
	var version, agents *canonical.Value
	for i := range v.Obj {
		m := &v.Obj[i]
		switch m.Key {
		case "version":
			version = &m.Value
		case "agents":
			agents = &m.Value
		default:
			return nil, fmt.Errorf("registry: unknown field %q", truncate(m.Key))
		}
	}
	if version == nil {
		return nil, errors.New("registry: no version")
	}
	n, err := version.AsInt64("version")
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if n != 1 {
		return nil, fmt.Errorf("registry: unsupported version %d (want 1)", n)
	}
	if agents == nil {
		return nil, errors.New("registry: no agents")
	}
	if agents.Kind != canonical.Object {
		return nil, fmt.Errorf("registry: agents must be an object from agent id to agent, not %s", agents.Kind)
	}
	r := New()
	owner := make(map[string]string) // key PEM -> agent id
	for i := range agents.Obj {
		m := &agents.Obj[i]
		if m.Key == "" {
			return nil, errors.New("registry: an agent id is empty")
		}
		a, err := parseAgent(&m.Value, m.Key, owner)
		if err != nil {
			return nil, fmt.Errorf("registry: agent %q: %w", truncate(m.Key), err)
		}
		r.agents[m.Key] = a
	}
	return r, nil
}

func parseAgent(v *canonical.Value, id string, owner map[string]string) (*Agent, error) {
	if v.Kind != canonical.Object {
		return nil, fmt.Errorf("must be an object, not %s", v.Kind)
	}
	a := &Agent{}
	hasKeys := false
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "keys":
			hasKeys = true
			a.Keys, err = parseKeys(&m.Value, id, owner)
		case "roles":
			a.Roles, err = parseRoles(&m.Value)
		case "revoked_at":
			a.RevokedAt, err = parseTime(&m.Value, "revoked_at")
		default:
			err = fmt.Errorf("unknown field %q", truncate(m.Key))
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasKeys || len(a.Keys) == 0 {
		return nil, errors.New("has no keys")
	}
	return a, nil
}

func parseKeys(v *canonical.Value, id string, owner map[string]string) ([]*Key, error) {
	if v.Kind != canonical.Array {
		return nil, fmt.Errorf("keys must be an array, not %s", v.Kind)
	}
	keys := make([]*Key, 0, len(v.Arr))
	for i := range v.Arr {
		k, err := parseKey(&v.Arr[i])
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		switch o, dup := owner[k.PublicKey]; {
		case dup && o == id:
			return nil, fmt.Errorf("keys[%d]: the same key is listed twice", i)
		case dup:
			return nil, fmt.Errorf("keys[%d]: the key is also registered for agent %q; a key belongs to one agent", i, truncate(o))
		}
		owner[k.PublicKey] = id
		keys = append(keys, k)
	}
	return keys, nil
}

func parseKey(v *canonical.Value) (*Key, error) {
	if v.Kind != canonical.Object {
		return nil, fmt.Errorf("must be an object, not %s", v.Kind)
	}
	k := &Key{}
	hasPEM := false
	for i := range v.Obj {
		m := &v.Obj[i]
		var err error
		switch m.Key {
		case "public_key":
			hasPEM = true
			if k.PublicKey, err = m.Value.AsString("public_key"); err == nil {
				if k.pub, err = identity.ParsePublicKeyPEM(k.PublicKey); err == nil {
					k.ver, err = identity.NewStdVerifier(k.pub) // SetVerifierFactory may replace it
				}
			}
		case "not_before":
			k.NotBefore, err = parseTime(&m.Value, m.Key)
		case "not_after":
			k.NotAfter, err = parseTime(&m.Value, m.Key)
		case "rotated_at":
			k.RotatedAt, err = parseTime(&m.Value, m.Key)
		default:
			err = fmt.Errorf("unknown field %q", truncate(m.Key))
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasPEM {
		return nil, errors.New("has no public_key")
	}
	return k, nil
}

func parseRoles(v *canonical.Value) ([]string, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	roles, err := v.AsStrings("roles")
	if err != nil {
		return nil, err
	}
	for i, role := range roles {
		if role == "" {
			return nil, errors.New("a role is empty")
		}
		if slices.Contains(roles[:i], role) {
			return nil, fmt.Errorf("role %q is listed twice", truncate(role))
		}
	}
	if len(roles) == 0 {
		return nil, nil // Marshal omits empty roles
	}
	return roles, nil
}

// parseTime reads an optional RFC 3339 instant, as encoding/json writes a time.Time.
func parseTime(v *canonical.Value, name string) (*time.Time, error) {
	if v.Kind == canonical.Null {
		return nil, nil
	}
	s, err := v.AsString(name)
	if err != nil {
		return nil, err
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return nil, fmt.Errorf("%s is not an RFC 3339 instant: %q", name, truncate(s))
	}
	return &t, nil
}

// truncate shortens hostile strings quoted in errors (always with %q, so that control
// characters in a file cannot reach a terminal).
func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ownerOf returns the agent that has the key spelled pemText, or "". The caller holds r.mu.
func (r *Registry) ownerOf(pemText string) string {
	for id, a := range r.agents {
		for _, k := range a.Keys {
			if k.PublicKey == pemText {
				return id
			}
		}
	}
	return ""
}

// Marshal encodes the registry as indented JSON.
func (r *Registry) Marshal() ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out, err := json.MarshalIndent(fileFormat{Version: 1, Agents: r.agents}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Update applies fn to the registry file at path under an exclusive lock and writes the
// result atomically (temporary file, fsync, rename, fsync of the directory). A missing file
// starts as an empty registry.
func Update(path string, fn func(*Registry) error) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := filelock.Lock(lock); err != nil {
		return fmt.Errorf("registry: lock %s: %w", path, err)
	}
	r, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		r, err = New(), nil
	}
	if err != nil {
		return err
	}
	if err := fn(r); err != nil {
		return err
	}
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o644)
}
