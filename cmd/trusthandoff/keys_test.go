package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

func rawKeyPEM(first, fill, last byte) string {
	k := make(ed25519.PublicKey, 32)
	for i := range k {
		k[i] = fill
	}
	k[0], k[31] = first, last
	return identity.PublicKeyPEM(k)
}

// order8PEM is one of the four points of order 8.
var order8PEM = identity.PublicKeyPEM(ed25519.PublicKey{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
	0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05})

var weakKeys = []struct{ name, pem, says string }{
	{"identity point", rawKeyPEM(0x01, 0x00, 0x00), "small order"},
	{"identity point, x = -0", rawKeyPEM(0x01, 0x00, 0x80), "small order"},
	{"identity point as y = p+1", rawKeyPEM(0xee, 0xff, 0x7f), "non-canonical"},
	{"order 2", rawKeyPEM(0xec, 0xff, 0x7f), "small order"},
	{"order 4", rawKeyPEM(0x00, 0x00, 0x00), "small order"},
	{"order 8", order8PEM, "small order"},
	{"y = p", rawKeyPEM(0xed, 0xff, 0x7f), "non-canonical"},
	{"y = 2^255-1", rawKeyPEM(0xff, 0xff, 0xff), "non-canonical"},
	{"not a curve point", rawKeyPEM(0x02, 0x00, 0x00), "does not decode"},
}

func fileBytes(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRegistryRefusesWeakKeys: registry add and rotate exit 2 with a clear message for
// every small-order or non-canonical key, and leave the registry file as it was.
func TestRegistryRefusesWeakKeys(t *testing.T) {
	w := newWorld(t)
	before := fileBytes(t, w.reg)
	for _, k := range weakKeys {
		t.Run(k.name, func(t *testing.T) {
			pub := w.write(t, "weak.pub", k.pem)
			runs := map[string][]string{
				"add":               {"registry", "add", "--registry", w.reg, "--public-key", pub},
				"add with an id":    {"registry", "add", "--registry", w.reg, "--public-key", pub, "--agent-id", "agent:mallory", "--role", "approver"},
				"add to a new file": {"registry", "add", "--registry", filepath.Join(w.dir, "new.json"), "--public-key", pub},
				"rotate":            {"registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["alice"], "--public-key", pub},
			}
			for name, args := range runs {
				r := mustTH(t, 2, "", args...)
				if !strings.HasPrefix(r.stderr, "trusthandoff: error: ") || !strings.Contains(r.stderr, k.says) || !strings.Contains(r.stderr, "weak.pub") {
					t.Errorf("%s: stderr %q does not say %q about weak.pub", name, r.stderr, k.says)
				}
				if r.stdout != "" {
					t.Errorf("%s: stdout %q", name, r.stdout)
				}
			}
			if fileBytes(t, w.reg) != before {
				t.Fatal("the registry file changed")
			}
			if _, err := os.Stat(filepath.Join(w.dir, "new.json")); err == nil {
				t.Fatal("a registry file was created for a refused key")
			}
		})
	}
}

// TestRegistryOneAgentPerKey: a key registered for one agent cannot be registered for
// another, by add or rotate.
func TestRegistryOneAgentPerKey(t *testing.T) {
	w := newWorld(t)
	before := fileBytes(t, w.reg)
	alicePub := w.key("alice") + ".pub"
	for name, args := range map[string][]string{
		"add under another id": {"registry", "add", "--registry", w.reg, "--public-key", alicePub, "--agent-id", "agent:mallory"},
		"rotate into bob":      {"registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["bob"], "--public-key", alicePub},
	} {
		r := mustTH(t, 2, "", args...)
		if !strings.Contains(r.stderr, "already registered for agent "+w.ids["alice"]) {
			t.Errorf("%s: stderr %q", name, r.stderr)
		}
	}
	if fileBytes(t, w.reg) != before {
		t.Fatal("the registry file changed")
	}
	// Re-adding alice's key for alice only merges roles.
	mustTH(t, 0, "", "registry", "add", "--registry", w.reg, "--public-key", alicePub)
}

// TestKeyFilesMustBeRegular: a directory or a device as --public-key or --key is refused
// with exit 2 (FIFOs: keys_unix_test.go).
func TestKeyFilesMustBeRegular(t *testing.T) {
	w := newWorld(t)
	for name, path := range map[string]string{"directory": w.dir, "device": os.DevNull} {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{
				{"registry", "add", "--registry", w.reg, "--public-key", path},
				{"registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["alice"], "--public-key", path},
				{"sign", "--key", path, "--to", w.ids["bob"], "--intent", "x"},
			} {
				r := mustTH(t, 2, "", args...)
				if !strings.Contains(r.stderr, "not a regular file") {
					t.Errorf("%s: stderr %q", args[0], r.stderr)
				}
			}
		})
	}
}

// TestRegistryFileStrictThroughCLI: a hand-edited registry that breaks a rule stops every
// command that loads it with exit 2 and says why; nothing is verified against it.
func TestRegistryFileStrictThroughCLI(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read")
	good := fileBytes(t, w.reg)
	var file struct {
		Agents map[string]json.RawMessage `json:"agents"`
	}
	if err := json.Unmarshal([]byte(good), &file); err != nil {
		t.Fatal(err)
	}
	alice := string(file.Agents[w.ids["alice"]])
	identityPEM, _ := json.Marshal(weakKeys[0].pem)
	cases := []struct{ name, content, says string }{
		{"duplicate agent", strings.Replace(good, `"agents": {`, `"agents": {"`+w.ids["alice"]+`": `+alice+`,`, 1), "duplicate object key"},
		{"one key under two agents", strings.Replace(good, `"agents": {`, `"agents": {"agent:mallory": `+alice+`,`, 1), "also registered for agent"},
		{"trailing data", good + `{"version": 1, "agents": {}}`, "after the JSON value"},
		{"unknown field", strings.Replace(good, `"version": 1`, `"version": 1, "trust_all": true`, 1), "unknown field"},
		{"version 2", strings.Replace(good, `"version": 1`, `"version": 2`, 1), "unsupported version"},
		{"identity key by hand", strings.Replace(good, `"agents": {`, `"agents": {"agent:mallory": {"keys": [{"public_key": `+string(identityPEM)+`}]},`, 1), "small order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.content == good {
				t.Fatal("the edit did not apply")
			}
			reg := w.write(t, "bad-reg.json", c.content)
			for _, args := range [][]string{
				{"verify", "--registry", reg, "--state", w.state, env},
				{"registry", "list", "--registry", reg},
				{"registry", "add", "--registry", reg, "--public-key", w.key("carol") + ".pub"},
			} {
				r := mustTH(t, 2, "", args...)
				if !strings.Contains(r.stderr, c.says) {
					t.Errorf("%s: stderr %q does not say %q", strings.Join(args[:2], " "), r.stderr, c.says)
				}
			}
			if fileBytes(t, reg) != c.content {
				t.Fatal("registry add rewrote a registry it could not parse")
			}
		})
	}
	// The packet itself was fine: the real registry still accepts it.
	wantReason(t, w.verify(t, 0, env), "ACCEPT", "ok")
}

// TestForgedIdentityKeyPacket: anyone can sign as the identity key (R = identity, S = 0
// verifies for every message under crypto/ed25519). Such a packet is malformed_envelope,
// with or without a registry.
func TestForgedIdentityKeyPacket(t *testing.T) {
	w := newWorld(t)
	env := fileBytes(t, sign(t, w, "alice", "bob", "--actions", "read"))
	var parsed struct {
		Packet struct {
			Signature string `json:"signature"`
			PublicKey string `json:"public_key"`
		} `json:"packet"`
	}
	if err := json.Unmarshal([]byte(env), &parsed); err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	forgedSig := make([]byte, 64)
	forgedSig[0] = 1
	for _, k := range weakKeys {
		t.Run(k.name, func(t *testing.T) {
			forged := strings.NewReplacer(
				q(parsed.Packet.PublicKey), q(k.pem),
				q(w.ids["alice"]), q(identity.AgentID(k.pem)),
				q(parsed.Packet.Signature), q(base64.StdEncoding.EncodeToString(forgedSig)),
			).Replace(env)
			if strings.Contains(forged, parsed.Packet.Signature) || !strings.Contains(forged, identity.AgentID(k.pem)) {
				t.Fatal("the forgery did not apply")
			}
			file := w.write(t, "forged.json", forged)
			wantReason(t, w.verify(t, 1, file), "REJECT", "malformed_envelope")
			wantReason(t, mustTH(t, 1, "", "verify", "--state", w.state, file).json(t), "REJECT", "malformed_envelope")
		})
	}
}
