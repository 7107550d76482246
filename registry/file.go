package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/internal/filelock"
)

// fileFormat is the registry file: {"version": 1, "agents": {id: Agent}}.
type fileFormat struct {
	Version int               `json:"version"`
	Agents  map[string]*Agent `json:"agents"`
}

// Load reads a registry file. Every key must be a canonical Ed25519 SPKI PEM.
func Load(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes registry JSON.
func Parse(data []byte) (*Registry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileFormat
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("registry: unsupported version %d (want 1)", f.Version)
	}
	r := New()
	for id, a := range f.Agents {
		if a == nil || len(a.Keys) == 0 {
			return nil, fmt.Errorf("registry: agent %s has no keys", id)
		}
		for _, k := range a.Keys {
			pub, err := identity.ParsePublicKeyPEM(k.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("registry: agent %s: %w", id, err)
			}
			k.pub = pub
		}
		r.agents[id] = a
	}
	return r, nil
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
	return writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
