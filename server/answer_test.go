package server

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written answer is byte for byte json.Marshal's, also for strings json escapes.
func TestDecisionAppendJSONMatchesMarshal(t *testing.T) {
	digest := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	odd := []string{"", "plain", `quote " and \ backslash`, "<script>&</script>", "tab\tnewline\n\x00",
		"unicode é ✓ \u2028\u2029", "bad utf-8 \xff\xfe", "del \x7f"}
	cases := map[string]Decision{
		"accept": {Decision: "ACCEPT", Reason: "ok", PacketID: "p1", Detail: "handoff verified",
			Flags: []string{}, SigningRule: "0.4", PacketDigest: &digest},
		"reject nil flags": {Decision: "REJECT", Reason: "replay_detected", PacketID: "p2", Detail: "nonce already used", DryRun: true},
		"two flags":        {Decision: "ACCEPT", Reason: "ok", Flags: []string{"token_overlap_used", "ai_generated_payload"}},
	}
	for i, s := range odd {
		s2 := s
		cases["odd "+string(rune('a'+i))] = Decision{Decision: s, Reason: "x", PacketID: s, Detail: s, Flags: []string{s, s}, SigningRule: s, PacketDigest: &s2}
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			got := d.appendJSON([]byte("prefix"))
			if !bytes.Equal(got[len("prefix"):], want) {
				t.Fatalf("appendJSON:\n got %s\nwant %s", got[len("prefix"):], want)
			}
		})
	}
}

// FuzzDecisionAppendJSON: any strings encode as json.Marshal encodes them.
func FuzzDecisionAppendJSON(f *testing.F) {
	f.Add("ACCEPT", "handoff verified", "<&>\u2028\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		d := Decision{Decision: a, Reason: "ok", PacketID: b, Detail: c, Flags: []string{c}, SigningRule: a, PacketDigest: &b}
		want, _ := json.Marshal(d)
		if got := d.appendJSON(nil); !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}
