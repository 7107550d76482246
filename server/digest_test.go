package server

import (
	"testing"

	"github.com/trusthandoff/trusthandoff-go/approval"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
)

// packetDigest is approval.Digest, for both signing rules, also when the pooled buffer
// was used before.
func TestPacketDigestMatchesApprovalDigest(t *testing.T) {
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewKeySigner(k)
	for _, intent := range []string{"x", "a much longer intent than the first one, to grow the buffer"} {
		env, err := packet.Build(s, identity.AgentID(identity.PublicKeyPEM(s.Public())), intent, packet.WithActions("read_tickets"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []packet.Rule{packet.Rule04, packet.Rule033} {
			want, err := approval.Digest(env.Packet, r)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				got, ok := packetDigest(env.Packet, r)
				if !ok || got != want {
					t.Fatalf("%s %q: packetDigest %x %v, want %x", r, intent, got, ok, want)
				}
			}
		}
	}
}
