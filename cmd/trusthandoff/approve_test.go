package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// TestApproveKeepsReferencePacketBytes: approving any reference vector's envelope writes the
// packet back exactly as the reference put it on the wire, and approving again keeps it
// too; a tampered vector is refused (exit 2).
func TestApproveKeepsReferencePacketBytes(t *testing.T) {
	w := newWorld(t)
	for _, dir := range []string{"packets_v0.3.3", "packets_v0.4.0"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "vectors", dir, "*.json"))
		if len(files) == 0 {
			t.Fatalf("no vectors in %s", dir)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				raw, _ := os.ReadFile(f)
				var v struct {
					Envelope string `json:"wire_envelope_json"`
					Packet   string `json:"wire_packet_json"`
					Expected struct {
						Verify bool `json:"verify_packet"`
					} `json:"expected"`
				}
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatal(err)
				}
				if !v.Expected.Verify {
					mustTH(t, 2, v.Envelope, "approve", "--key", w.key("olga"), "--envelope", "-")
					return
				}
				out := mustTH(t, 0, v.Envelope, "approve", "--key", w.key("olga"), "--envelope", "-").stdout
				if !strings.Contains(out, v.Packet) {
					t.Fatalf("approve re-encoded the packet:\n%s\nwant it to contain\n%s", out, v.Packet)
				}
				out = mustTH(t, 0, out, "approve", "--key", w.key("olga"), "--envelope", "-", "--deny").stdout
				if !strings.Contains(out, v.Packet) {
					t.Fatalf("a second approval re-encoded the packet:\n%s", out)
				}
				if env, err := packet.ParseEnvelope([]byte(out), canonical.Limits{}); err != nil || len(env.Approvals) != 2 {
					t.Fatalf("want both approvals in %s (%v)", out, err)
				}
			})
		}
	}
}

// TestApproveKeepsForeign033Packet: a 0.3.3 packet whose context is signed in an unsorted
// wire order (any 0.3.3 sender other than the reference may write one) still verifies
// after approve: the approval counts and the packet is accepted. Re-encoding it would sort
// the context and break the signature.
func TestApproveKeepsForeign033Packet(t *testing.T) {
	w := newWorld(t)
	signer, err := loadSigner(w.key("alice"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := canonical.Parse([]byte(`{"zeta": {"y": 1, "x": [2.5, {"q": null, "p": "é"}]}, "alpha": true}`), canonical.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ttl, risk := int64(900), packet.RiskRead
	p := &packet.Packet{
		PacketID: packet.NewID(), TaskID: "task-1", FromAgent: w.ids["alice"], ToAgent: w.ids["bob"],
		IssuedAt: canonical.TimestampOf(now), ExpiresAt: canonical.TimestampOf(now.Add(900 * time.Second)),
		Nonce: packet.NewID(), Intent: "Summarize ticket 4821", Context: ctx, MemoryRefs: []string{},
		Permissions: packet.Permissions{AllowedActions: []string{"read_tickets"}},
		Constraints: &packet.Constraints{RequiresHumanReview: true},
		RiskLevel:   &risk, TTLSeconds: &ttl, SignatureAlgo: "Ed25519", PublicKey: signerPEM(t, w, "alice"),
	}
	msg, err := p.SigningBytes(nil, packet.Rule033)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	wire := string(msg[:len(msg)-1]) + `,"signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
	env := w.write(t, "foreign.json", `{"packet": `+wire+`}`)

	wantReason(t, w.verify(t, 1, env), "REJECT", "human_review_required") // spends no nonce
	approved := mustTH(t, 0, "", "approve", "--key", w.key("olga"), "--envelope", env).stdout
	if !strings.Contains(approved, wire) {
		t.Fatalf("approve re-encoded the packet:\n%s", approved)
	}
	d := w.verify(t, 0, w.write(t, "foreign-approved.json", approved))
	wantReason(t, d, "ACCEPT", "ok")
	if d["signing_rule"] != "0.3.3" {
		t.Errorf("signing rule %v, want 0.3.3", d["signing_rule"])
	}
}

func signerPEM(t *testing.T, w *world, name string) string {
	t.Helper()
	b, err := os.ReadFile(w.key(name) + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
