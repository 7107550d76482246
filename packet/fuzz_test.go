package packet

import (
	"bytes"
	"testing"
)

// FuzzParseEnvelope: no input panics decoding or canonicalization; an accepted envelope's
// wire form re-parses to the same wire form and the same rule 0.4 signing bytes.
func FuzzParseEnvelope(f *testing.F) {
	for _, dir := range []string{"packets_v0.4.0", "packets_v0.3.3"} {
		for _, v := range loadPacketVectors(f, dir) {
			f.Add([]byte(v.WireEnvelopeJSON))
		}
	}
	f.Add([]byte(`{"packet": {"packet_id": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data, Limits{})
		if err != nil {
			return
		}
		wire, err := env.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		env2, err := ParseEnvelope(wire, Limits{})
		if err != nil {
			t.Fatalf("re-parse of our own wire form: %v\n%s", err, wire)
		}
		wire2, _ := env2.MarshalJSON()
		if !bytes.Equal(wire, wire2) {
			t.Fatalf("wire form unstable:\n%s\n%s", wire, wire2)
		}
		// Rule 0.4 sorts keys, so its bytes survive the wire round trip exactly. Rule 0.3.3
		// signs the context in wire order, and the wire is sorted (as the reference's is), so
		// only its encodability is checked here.
		a, err1 := env.Packet.SigningBytes(nil, Rule04)
		b, err2 := env2.Packet.SigningBytes(nil, Rule04)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("rule 0.4 signing bytes differ after a wire round trip (%v, %v)", err1, err2)
		}
		if _, err := env.Packet.SigningBytes(nil, Rule033); err != nil {
			t.Fatalf("rule 0.3.3: %v", err)
		}
	})
}
