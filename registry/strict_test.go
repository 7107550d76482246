package registry

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/identity"
)

func genPEM(t testing.TB) string {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return identity.PublicKeyPEM(k.Public().(ed25519.PublicKey))
}

// q is the JSON string literal of s.
func q(s string) string { return fmt.Sprintf("%q", s) }

// identityPEM is the SPKI PEM of the identity point 01 00…00.
func identityPEM() string {
	key := make(ed25519.PublicKey, 32)
	key[0] = 1
	return identity.PublicKeyPEM(key)
}

// nonCanonicalPEM is the PEM of y = p+1, the identity point spelled non-canonically.
func nonCanonicalPEM() string {
	key := make(ed25519.PublicKey, 32)
	for i := range key {
		key[i] = 0xff
	}
	key[0], key[31] = 0xee, 0x7f
	return identity.PublicKeyPEM(key)
}

// TestParseStrict: every rule of the registry file, with several hostile spellings each.
func TestParseStrict(t *testing.T) {
	a, b := q(genPEM(t)), q(genPEM(t))
	agent := func(keys ...string) string {
		objs := make([]string, len(keys))
		for i, k := range keys {
			objs[i] = `{"public_key":` + k + `}`
		}
		return `{"keys":[` + strings.Join(objs, ",") + `]}`
	}
	file := func(agents string) string { return `{"version":1,"agents":{` + agents + `}}` }
	good := file(`"agent:a":` + agent(a) + `,"agent:b":` + agent(b))
	ok := []struct{ name, data string }{
		{"two agents", good},
		{"empty registry", `{"version":1,"agents":{}}`},
		{"fields in another order", `{"agents":{"agent:a":{"roles":["approver"],"keys":[{"not_before":"2026-04-01T00:00:00Z","public_key":` + a + `}]}},"version":1}`},
		{"whitespace around the value", " \n\t" + good + "\n\n"},
		{"optional fields null", file(`"agent:a":{"keys":[{"public_key":` + a + `,"not_before":null,"not_after":null,"rotated_at":null}],"roles":null,"revoked_at":null}`)},
		{"two keys of one agent", file(`"agent:a":` + agent(a, b))},
		{"time with an offset", file(`"agent:a":{"keys":[{"public_key":` + a + `,"not_before":"2026-04-01T02:00:00.123456789+02:00"}]}`)},
	}
	for _, c := range ok {
		t.Run("accepts "+c.name, func(t *testing.T) {
			if _, err := Parse([]byte(c.data)); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := []struct{ name, data, want string }{
		// one JSON value
		{"trailing object", good + `{}`, "after the JSON value"},
		{"trailing garbage", good + ` x`, "after the JSON value"},
		{"two files concatenated", good + good, "after the JSON value"},
		{"not JSON", `{`, "invalid JSON"},
		{"empty", ``, "invalid JSON"},
		{"top level array", `[]`, "must be a JSON object"},
		{"NaN", `{"version":NaN,"agents":{}}`, "invalid JSON"},
		// duplicate object keys at every level
		{"duplicate agent", file(`"agent:a":` + agent(a) + `,"agent:a":` + agent(b)), "duplicate"},
		{"duplicate agent spelled with an escape", file(`"agent:a":` + agent(a) + `,"agent:\u0061":` + agent(b)), "duplicate"},
		{"duplicate version", `{"version":1,"version":1,"agents":{}}`, "duplicate"},
		{"duplicate agents field", `{"version":1,"agents":{},"agents":{"agent:a":` + agent(a) + `}}`, "duplicate"},
		{"duplicate keys field", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"keys":[{"public_key":` + b + `}]}`), "duplicate"},
		{"duplicate public_key field", file(`"agent:a":{"keys":[{"public_key":` + a + `,"public_key":` + b + `}]}`), "duplicate"},
		// keys: one agent per key, once
		{"same key under two agents", file(`"agent:a":` + agent(a) + `,"agent:b":` + agent(a)), "also registered for agent"},
		{"same key twice in an agent", file(`"agent:a":` + agent(a, a)), "listed twice"},
		{"same key twice among others", file(`"agent:a":` + agent(a, b, a)), "listed twice"},
		// unknown fields at every level, and case variants encoding/json would have matched
		{"unknown top-level field", `{"version":1,"agents":{},"extra":1}`, "unknown field"},
		{"capitalised Version", `{"Version":1,"agents":{}}`, "unknown field"},
		{"unknown agent field", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"admin":true}`), "unknown field"},
		{"capitalised Keys", file(`"agent:a":{"Keys":[{"public_key":` + a + `}]}`), "unknown field"},
		{"unknown key field", file(`"agent:a":{"keys":[{"public_key":` + a + `,"trusted":true}]}`), "unknown field"},
		{"capitalised Public_Key", file(`"agent:a":{"keys":[{"Public_Key":` + a + `}]}`), "unknown field"},
		// version
		{"version 2", `{"version":2,"agents":{}}`, "unsupported version"},
		{"version 0", `{"version":0,"agents":{}}`, "unsupported version"},
		{"version as a string", `{"version":"1","agents":{}}`, "integer"},
		{"version as a float", `{"version":1.0,"agents":{}}`, "integer"},
		{"version huge", `{"version":100000000000000000000,"agents":{}}`, "version"},
		{"version null", `{"version":null,"agents":{}}`, "integer"},
		{"no version", `{"agents":{}}`, "no version"},
		// agents and agent ids
		{"no agents", `{"version":1}`, "no agents"},
		{"agents as an array", `{"version":1,"agents":[` + agent(a) + `]}`, "agents must be an object"},
		{"agents as an array of id objects", `{"version":1,"agents":[{"id":1,"keys":[{"public_key":` + a + `}]}]}`, "agents must be an object"},
		{"agents null", `{"version":1,"agents":null}`, "agents must be an object"},
		{"agent id not a string", `{"version":1,"agents":{1:` + agent(a) + `}}`, "invalid JSON"},
		{"empty agent id", file(`"":` + agent(a)), "agent id is empty"},
		{"agent not an object", file(`"agent:a":[` + a + `]`), "must be an object"},
		{"agent null", file(`"agent:a":null`), "must be an object"},
		{"agent without keys", file(`"agent:a":{}`), "no keys"},
		{"agent with empty keys", file(`"agent:a":{"keys":[]}`), "no keys"},
		{"keys null", file(`"agent:a":{"keys":null}`), "keys must be an array"},
		{"keys an object", file(`"agent:a":{"keys":{"public_key":` + a + `}}`), "keys must be an array"},
		{"key not an object", file(`"agent:a":{"keys":[` + a + `]}`), "must be an object"},
		{"key without public_key", file(`"agent:a":{"keys":[{"not_before":"2026-04-01T00:00:00Z"}]}`), "no public_key"},
		// public keys: canonical PEM, Ed25519, not small order, not non-canonical
		{"public_key not PEM", file(`"agent:a":` + agent(q("nope"))), "invalid key"},
		{"public_key a number", file(`"agent:a":` + agent(`1`)), "must be a string"},
		{"public_key null", file(`"agent:a":` + agent(`null`)), "must be a string"},
		{"public_key without trailing newline", file(`"agent:a":` + agent(q(strings.TrimSuffix(genPEM(t), "\n")))), "canonical"},
		{"public_key with CRLF", file(`"agent:a":` + agent(q(strings.ReplaceAll(genPEM(t), "\n", "\r\n")))), "canonical"},
		{"public_key with a header", file(`"agent:a":` + agent(q(strings.Replace(genPEM(t), "-----\n", "-----\nProc-Type: 4\n\n", 1)))), "invalid key"},
		{"identity point key", file(`"agent:a":` + agent(q(identityPEM()))), "small order"},
		{"identity point among good keys", file(`"agent:a":` + agent(a, q(identityPEM()))), "small order"},
		{"non-canonical key", file(`"agent:a":` + agent(q(nonCanonicalPEM()))), "non-canonical"},
		// roles and times
		{"roles not an array", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"roles":"approver"}`), "roles"},
		{"role not a string", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"roles":[1]}`), "roles"},
		{"role twice", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"roles":["approver","approver"]}`), "listed twice"},
		{"empty role", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"roles":[""]}`), "role is empty"},
		{"naive time", file(`"agent:a":{"keys":[{"public_key":` + a + `,"not_before":"2026-04-01T00:00:00"}]}`), "RFC 3339"},
		{"time as a number", file(`"agent:a":{"keys":[{"public_key":` + a + `,"not_after":1775001600}]}`), "must be a string"},
		{"revoked_at garbage", file(`"agent:a":{"keys":[{"public_key":` + a + `}],"revoked_at":"yesterday"}`), "RFC 3339"},
	}
	for _, c := range bad {
		t.Run("refuses "+c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestParseErrorsQuoteSafely: an agent id with control characters is quoted in errors.
func TestParseErrorsQuoteSafely(t *testing.T) {
	_, err := Parse([]byte(`{"version":1,"agents":{"agent:\u001b[31m\n` + strings.Repeat("x", 100) + `":{}}}`))
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\n") || strings.Contains(err.Error(), strings.Repeat("x", 80)) {
		t.Fatalf("error %q", err)
	}
}

// TestParseSizeLimit: a file over MaxFileSize is refused before parsing.
func TestParseSizeLimit(t *testing.T) {
	data := `{"version":1,"agents":{}}` + strings.Repeat(" ", MaxFileSize)
	if _, err := Parse([]byte(data)); err == nil {
		t.Fatal("accepted a file over the limit")
	}
}

// TestParseKeepsContent: what Parse accepts resolves as the file says.
func TestParseKeepsContent(t *testing.T) {
	pemA := genPEM(t)
	data := `{"version":1,"agents":{"agent:a":{"keys":[{"public_key":` + q(pemA) + `,"not_before":"2026-04-01T00:00:00Z","not_after":"2026-04-01T01:00:00Z","rotated_at":"2026-04-01T00:59:00Z"}],"roles":["approver"],"revoked_at":"2026-05-01T00:00:00Z"}}}`
	r, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 4, 1, 0, 59, 30, 0, time.UTC)
	bind, err := r.Resolve("agent:a", pemA, at)
	if err != nil || !bind.OverlapUsed || !r.HasRole("agent:a", RoleApprover) {
		t.Fatalf("resolve: %+v %v", bind, err)
	}
	if _, err := r.Resolve("agent:a", pemA, at.Add(time.Hour)); err == nil {
		t.Fatal("key valid after not_after")
	}
}
