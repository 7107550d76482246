package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// attestFile writes an attestation by the agent with key keyName about env.
func attestFile(t *testing.T, w *world, keyName, env string, extra ...string) string {
	t.Helper()
	args := append([]string{"attest", "--key", w.key(keyName), "--envelope", env, "--status", "OK", "--result", `{"rows":3}`}, extra...)
	w.n++
	return w.write(t, "att-"+keyName+"-"+strings.Repeat("x", w.n)+".json", mustTH(t, 0, "", args...).stdout)
}

func verifyAttestation(t *testing.T, w *world, want int, att string, extra ...string) map[string]any {
	t.Helper()
	args := append([]string{"verify-attestation", "--registry", w.reg, "--state", w.state}, extra...)
	return mustTH(t, want, "", append(args, att)...).json(t)
}

func TestAttestAfterKeyRotation(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	mustTH(t, 0, "", "keygen", "--out", w.key("bob2"))
	mustTH(t, 0, "", "registry", "rotate", "--registry", w.reg, "--agent-id", w.ids["bob"], "--public-key", w.key("bob2")+".pub", "--overlap", "30s")

	d := verifyAttestation(t, w, 0, attestFile(t, w, "bob2", env, "--agent-id", w.ids["bob"]), "--expect-signer", w.ids["bob"])
	wantReason(t, d, "ACCEPT", "ok")
	if d["signer"] != w.ids["bob"] || d["flags"] != nil {
		t.Fatalf("%v", d)
	}
	// the old key, inside its overlap window: accepted and flagged
	d = verifyAttestation(t, w, 0, attestFile(t, w, "bob", env))
	if flags, _ := d["flags"].([]any); d["decision"] != "ACCEPT" || len(flags) != 1 || flags[0] != "token_overlap_used" {
		t.Fatalf("%v", d)
	}
	// the new key under its own id is not registered
	wantReason(t, verifyAttestation(t, w, 1, attestFile(t, w, "bob2", env)), "REJECT", "unknown_agent")
	// the new key cannot attest for another agent
	wantReason(t, verifyAttestation(t, w, 1, attestFile(t, w, "bob2", env, "--agent-id", w.ids["carol"])), "REJECT", "public_key_mismatch")
	// with the bare public key the id must be the key's own
	wantReason(t, mustTH(t, 1, "", "verify-attestation", "--public-key", w.key("bob2")+".pub", "--state", w.state, attestFile(t, w, "bob2", env, "--agent-id", w.ids["bob"])).json(t), "REJECT", "public_key_mismatch")
	for _, bad := range []string{"bob", "agent:", "agent:b ob", w.ids["bob"] + "\n"} {
		mustTH(t, 2, "", "attest", "--key", w.key("bob2"), "--envelope", env, "--result", "{}", "--agent-id", bad)
	}
}

func TestVerifyAttestationRejectsRevokedSigner(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	bobs := attestFile(t, w, "bob", env)
	carols := attestFile(t, w, "carol", env)
	mustTH(t, 0, "", "revoke", "--state", w.state, "--agent-id", w.ids["bob"])
	for _, extra := range [][]string{nil, {"--no-replay-check"}, {"--expect-signer", w.ids["bob"]}} {
		d := verifyAttestation(t, w, 1, bobs, extra...)
		wantReason(t, d, "REJECT", "agent_revoked")
		if !strings.Contains(d["detail"].(string), w.ids["bob"]) {
			t.Fatalf("detail %v does not name the signer", d["detail"])
		}
	}
	// the bare-key mode consults the same store
	wantReason(t, mustTH(t, 1, "", "verify-attestation", "--public-key", w.key("bob")+".pub", "--state", w.state, bobs).json(t), "REJECT", "agent_revoked")
	// only the revoked agent is affected, and its rejected attestation consumed no nonce
	wantReason(t, verifyAttestation(t, w, 0, carols), "ACCEPT", "ok")
	// a state store that cannot be opened fails closed, exit 3
	notADir := w.write(t, "file", "x")
	mustTH(t, 3, "", "verify-attestation", "--registry", w.reg, "--state", filepath.Join(notADir, "state"), "--no-replay-check", carols)
	// revoked in the registry (not the state store)
	other := filepath.Join(w.dir, "state2")
	mustTH(t, 0, "", "registry", "revoke", "--registry", w.reg, "--agent-id", w.ids["carol"])
	wantReason(t, mustTH(t, 1, "", "verify-attestation", "--registry", w.reg, "--state", other, carols).json(t), "REJECT", "agent_revoked")
}

func TestVerifyAttestationExpectSigner(t *testing.T) {
	w := newWorld(t)
	env := sign(t, w, "alice", "bob", "--actions", "read_tickets")
	bobs := attestFile(t, w, "bob", env)
	carols := attestFile(t, w, "carol", env)
	wantReason(t, verifyAttestation(t, w, 0, bobs, "--expect-signer", w.ids["bob"], "--no-replay-check"), "ACCEPT", "ok")
	wantReason(t, mustTH(t, 0, "", "verify-attestation", "--public-key", w.key("bob")+".pub", "--state", w.state, "--no-replay-check", "--expect-signer", w.ids["bob"], bobs).json(t), "ACCEPT", "ok")
	for _, who := range []string{"alice", "carol", "olga"} {
		d := verifyAttestation(t, w, 1, bobs, "--expect-signer", w.ids[who], "--no-replay-check")
		wantReason(t, d, "REJECT", "public_key_mismatch")
		if d["signer"] != nil {
			t.Fatalf("a rejected attestation names a signer: %v", d)
		}
	}
	wantReason(t, mustTH(t, 1, "", "verify-attestation", "--public-key", w.key("bob")+".pub", "--state", w.state, "--expect-signer", w.ids["carol"], bobs).json(t), "REJECT", "public_key_mismatch")
	// carol's attestation relabelled as bob's: signed_by is not signed, the fingerprint is
	data, err := os.ReadFile(carols)
	if err != nil || strings.Count(string(data), w.ids["carol"]) != 1 {
		t.Fatalf("%v %s", err, data)
	}
	forged := w.write(t, "relabelled.json", strings.Replace(string(data), w.ids["carol"], w.ids["bob"], 1))
	wantReason(t, verifyAttestation(t, w, 1, forged, "--expect-signer", w.ids["bob"]), "REJECT", "public_key_mismatch")
	// the expectation is an exact id
	for _, bad := range []string{w.ids["bob"][:len(w.ids["bob"])-1], "agent:" + strings.ToUpper(w.ids["bob"][6:]), "agent:" + strings.ToLower(w.ids["bob"][6:])} {
		if bad == w.ids["bob"] {
			continue
		}
		wantReason(t, verifyAttestation(t, w, 1, bobs, "--expect-signer", bad, "--no-replay-check"), "REJECT", "public_key_mismatch")
	}
	for _, bad := range []string{"bob", "agent:", w.ids["bob"] + " "} {
		mustTH(t, 2, "", "verify-attestation", "--registry", w.reg, "--state", w.state, "--expect-signer", bad, bobs)
	}
	mustTH(t, 2, "", "verify-attestation", "--registry", w.reg, "--state", w.state, "--max-age", "0s", bobs)
}
