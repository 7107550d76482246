package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// packetOf returns the packet object of an envelope file.
func packetOf(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	return env["packet"].(map[string]any)
}

// wantUsage runs the CLI, wants exit 2 and a message on stderr naming what is wrong.
func wantUsage(t *testing.T, stdin, mention string, args ...string) {
	t.Helper()
	r := mustTH(t, 2, stdin, args...)
	if r.stdout != "" {
		t.Fatalf("a refused sign printed %q", r.stdout)
	}
	if !strings.Contains(r.stderr, mention) {
		t.Fatalf("stderr %q does not mention %q", r.stderr, mention)
	}
}

func TestSignChecksToUpFront(t *testing.T) {
	w := newWorld(t)
	bad := []string{"bob", "agent:", "agent: " + w.ids["bob"][6:], w.ids["bob"] + " ", w.ids["bob"] + "\n", `"` + w.ids["bob"] + `"`,
		w.key("bob") + ".pub", "$BOB", "-----BEGIN PUBLIC KEY-----", "agent:" + strings.Repeat("x", 200), "Agent:" + w.ids["bob"][6:]}
	for _, to := range bad {
		t.Run(to, func(t *testing.T) {
			wantUsage(t, "", "--to", "sign", "--key", w.key("alice"), "--to", to, "--intent", "x")
			wantUsage(t, "", "--to", "delegate", "--key", w.key("alice"), "--to", to, "--actions", "read")
		})
	}
	// checked before the key is read: a missing key file is not what is reported
	wantUsage(t, "", "--to", "sign", "--key", filepath.Join(w.dir, "missing.key"), "--to", "bob", "--intent", "x")
	wantUsage(t, "", "--agent-id", "sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x", "--agent-id", "alice")
}

func TestSignChecksCapabilityUpFront(t *testing.T) {
	w := newWorld(t)
	_, root := delegate(t, w, "alice", "bob", "--actions", "read_tickets,send_email", "--max-tool-calls", "10")
	_, leaf := delegate(t, w, "bob", "carol", "--actions", "read_tickets", "--parent", root)
	_, other := delegate(t, w, "alice", "carol", "--actions", "read_tickets")
	pad := root + "=="
	flip := []byte(root)
	flip[10] ^= 1
	cases := []struct {
		name, from, to string
		caps           []string
	}{
		{"not base64", "bob", "carol", []string{"not a token!"}},
		{"a JSON object", "bob", "carol", []string{`{"capability_id":"x"}`}},
		{"base64 of garbage", "bob", "carol", []string{base64.RawURLEncoding.EncodeToString([]byte("garbage"))}},
		{"padded", "alice", "bob", []string{pad}},
		{"a flipped byte", "alice", "bob", []string{string(flip)}},
		{"empty", "alice", "bob", []string{""}},
		{"capability for another subject", "alice", "carol", []string{root}},
		{"leaf for another subject", "bob", "alice", []string{root, leaf}},
		{"signer is not the issuer", "carol", "bob", []string{root}},
		{"leaf first", "bob", "carol", []string{leaf, root}},
		{"leaf without its root", "bob", "carol", []string{leaf}},
		{"unrelated root before the leaf", "bob", "carol", []string{other, leaf}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"sign", "--key", w.key(c.from), "--to", w.ids[c.to], "--intent", "x"}
			for _, tok := range c.caps {
				args = append(args, "--capability", tok)
			}
			wantUsage(t, "", "--capability", args...)
		})
	}
}

func TestSignAppliesCapabilityLimits(t *testing.T) {
	w := newWorld(t)
	_, root := delegate(t, w, "alice", "bob", "--actions", "read_tickets,search_kb,send_email", "--max-tool-calls", "10", "--data-boundary", "eu")
	_, leaf := delegate(t, w, "bob", "carol", "--actions", "read_tickets,search_kb", "--max-tool-calls", "4", "--parent", root, "--requires-review")
	env := sign(t, w, "bob", "carol", "--capability", root, "--capability", leaf)
	p := packetOf(t, env)
	perms := p["permissions"].(map[string]any)
	cons := p["constraints"].(map[string]any)
	if perms["max_tool_calls"] != 4.0 || len(perms["allowed_actions"].([]any)) != 2 || cons["data_boundary"] != "eu" || cons["requires_human_review"] != true {
		t.Fatalf("permissions %v constraints %v: the leaf's limits must be applied", perms, cons)
	}
	// what the chain imposes holds at the receiver: review is required, not a violation
	wantReason(t, w.verify(t, 1, env), "REJECT", "human_review_required")
	narrower := sign(t, w, "bob", "carol", "--capability", root, "--capability", leaf, "--actions", "search_kb", "--max-tool-calls", "2")
	if pp := packetOf(t, narrower)["permissions"].(map[string]any); pp["max_tool_calls"] != 2.0 {
		t.Fatalf("%v", pp)
	}
	wider := []struct {
		mention string
		extra   []string
	}{
		{"--max-tool-calls", []string{"--max-tool-calls", "5"}},
		{"--actions", []string{"--actions", "send_email"}},
		{"--actions", []string{"--actions", "read_tickets,READ_TICKETS"}},
		{"--max-runtime/--data-boundary", []string{"--data-boundary", "us"}},
	}
	for _, c := range wider {
		t.Run(strings.Join(c.extra, " "), func(t *testing.T) {
			args := append([]string{"sign", "--key", w.key("bob"), "--to", w.ids["carol"], "--intent", "x", "--capability", root, "--capability", leaf}, c.extra...)
			wantUsage(t, "", c.mention, args...)
		})
	}
	// a root alone: the envelope carries only the packet's token
	single := sign(t, w, "alice", "bob", "--capability", root, "--actions", "send_email")
	data, _ := os.ReadFile(single)
	if strings.Contains(string(data), `"capabilities"`) {
		t.Fatal("a root-only handoff must not repeat the token in capabilities")
	}
	wantReason(t, w.verify(t, 0, single, "--require-capability"), "ACCEPT", "ok")
}

func TestSignChecksContext(t *testing.T) {
	w := newWorld(t)
	base := []string{"sign", "--key", w.key("alice"), "--to", w.ids["bob"], "--intent", "x"}
	for _, c := range []struct{ name, ctx, mention string }{
		{"array", `[1,2]`, "JSON object, not an array"},
		{"string", `"ticket 4821"`, "JSON object, not a string"},
		{"number", `4821`, "JSON object, not an integer"},
		{"null", `null`, "JSON object, not a null"},
		{"invalid JSON", `{"ticket":`, "not valid JSON"},
		{"trailing data", `{"a":1} {"b":2}`, "not valid JSON"},
		{"duplicate keys", `{"a":1,"a":2}`, "not valid JSON"},
		{"NaN", `{"a":NaN}`, "not valid JSON"},
		{"single quotes", `{'a':1}`, "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantUsage(t, "", "--context", append(base, "--context", c.ctx)...)
			f := w.write(t, "ctx-"+strings.ReplaceAll(c.name, " ", "-")+".json", c.ctx)
			wantUsage(t, "", "--context-file", append(base, "--context-file", f)...)
		})
	}
	t.Run("both flags", func(t *testing.T) {
		f := w.write(t, "ok.json", `{"a":1}`)
		mustTH(t, 2, "", append(base, "--context", `{"a":1}`, "--context-file", f)...)
	})
	t.Run("missing file", func(t *testing.T) {
		mustTH(t, 2, "", append(base, "--context-file", filepath.Join(w.dir, "nope.json"))...)
	})
	t.Run("over the read limit", func(t *testing.T) {
		f := w.write(t, "huge.json", `{"blob":"`+strings.Repeat("x", 1<<20)+`"}`)
		wantUsage(t, "", "limit", append(base, "--context-file", f)...)
	})
	t.Run("fits the file limit but not the envelope", func(t *testing.T) {
		f := w.write(t, "big.json", `{"blob":"`+strings.Repeat("x", 1<<20-100)+`"}`)
		wantUsage(t, "", "envelope", append(base, "--context-file", f)...)
	})
	t.Run("deeper than receivers parse", func(t *testing.T) {
		f := w.write(t, "deep.json", `{"d":`+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`}`)
		wantUsage(t, "", "--context-file", append(base, "--context-file", f)...)
	})
	t.Run("large context from a file", func(t *testing.T) {
		f := w.write(t, "large.json", `{"tickets":[`+strings.Repeat(`{"id":4821,"body":"Résumé ✓ please refund"},`, 5000)+`{"id":1}]}`)
		env := w.write(t, "large-env.json", mustTH(t, 0, "", append(base, "--context-file", f)...).stdout)
		wantReason(t, w.verify(t, 0, env), "ACCEPT", "ok")
		if n := len(packetOf(t, env)["context"].(map[string]any)["tickets"].([]any)); n != 5001 {
			t.Fatalf("%d tickets", n)
		}
	})
	t.Run("context from stdin", func(t *testing.T) {
		env := w.write(t, "stdin-env.json", mustTH(t, 0, `{"ticket":4821}`, append(base, "--context-file", "-")...).stdout)
		if packetOf(t, env)["context"].(map[string]any)["ticket"] != 4821.0 {
			t.Fatal("context from stdin lost")
		}
	})
}

func TestSignAfterKeyRotation(t *testing.T) {
	w := newWorld(t)
	mustTH(t, 0, "", "keygen", "--out", w.key("alice2"))
	mustTH(t, 0, "", "registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["alice"], "--public-key", w.key("alice2")+".pub", "--overlap", "0s")
	// the new key with the registered id
	rotated := sign(t, w, "alice2", "bob", "--agent-id", w.ids["alice"], "--actions", "read_tickets")
	if packetOf(t, rotated)["from_agent"] != w.ids["alice"] {
		t.Fatal("from_agent must be the registered id")
	}
	wantReason(t, w.verify(t, 0, rotated), "ACCEPT", "ok")
	// the new key under its own derived id is nobody
	wantReason(t, w.verify(t, 1, sign(t, w, "alice2", "bob", "--actions", "read_tickets")), "REJECT", "unknown_agent")
	// the old key is no longer the agent's
	wantReason(t, w.verify(t, 1, sign(t, w, "alice", "bob", "--actions", "read_tickets")), "REJECT", "public_key_mismatch")
	// the new key cannot speak for another agent
	wantReason(t, w.verify(t, 1, sign(t, w, "alice2", "bob", "--agent-id", w.ids["carol"], "--actions", "read_tickets")), "REJECT", "public_key_mismatch")
	// delegation after rotation, then a handoff under it
	_, root := delegate(t, w, "alice2", "bob", "--agent-id", w.ids["alice"], "--actions", "read_tickets")
	_, leaf := delegate(t, w, "bob", "carol", "--actions", "read_tickets", "--parent", root)
	wantReason(t, w.verify(t, 0, sign(t, w, "bob", "carol", "--capability", root, "--capability", leaf), "--require-capability"), "ACCEPT", "ok")
	wantReason(t, w.verify(t, 0, sign(t, w, "alice2", "bob", "--agent-id", w.ids["alice"], "--capability", root), "--require-capability"), "ACCEPT", "ok")
	// the chain's issuer must be the signer, rotated id included
	wantUsage(t, "", "--capability", "sign", "--key", w.key("alice2"), "--to", w.ids["bob"], "--intent", "x", "--capability", root)
}
