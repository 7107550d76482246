package packet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
)

// attach adds what approve and delegate add to a received envelope: an approval and
// capability tokens, beside the packet.
func attach(env *Envelope) {
	env.Approvals = append(env.Approvals, canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{
		{Key: "approver", Value: canonical.Value{Kind: canonical.String, Str: "agent:olga"}},
		{Key: "decision", Value: canonical.Value{Kind: canonical.String, Str: "approve"}},
	}})
	env.Capabilities = append(env.Capabilities, "tok-root", "tok-leaf")
}

// packetBytes returns the bytes of the "packet" member of an envelope's JSON text.
func packetBytes(t *testing.T, envelope []byte) []byte {
	t.Helper()
	start, end, ok := memberSpan(envelope, "packet")
	if !ok {
		t.Fatalf("no packet member in %s", envelope)
	}
	return envelope[start:end]
}

// TestEnvelopeKeepsReferencePacketBytes: for every reference vector, attaching approvals and
// capabilities to the parsed envelope re-emits the packet exactly as the reference wrote it,
// and the result still verifies as the vector says.
func TestEnvelopeKeepsReferencePacketBytes(t *testing.T) {
	for _, dir := range []string{"packets_v0.4.0", "packets_v0.3.3"} {
		for name, v := range loadPacketVectors(t, dir) {
			t.Run(dir+"/"+name, func(t *testing.T) {
				env, err := ParseEnvelope([]byte(v.WireEnvelopeJSON), Limits{})
				if err != nil {
					t.Fatal(err)
				}
				attach(env)
				out, err := env.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if got := packetBytes(t, out); string(got) != v.WirePacketJSON {
					t.Fatalf("packet bytes changed:\n got %s\nwant %s", got, v.WirePacketJSON)
				}
				// Twice more: what we wrote is kept as well.
				for n := 1; n <= 2; n++ {
					env2, err := ParseEnvelope(out, Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if len(env2.Approvals) != n || len(env2.Capabilities) != 2*n {
						t.Fatalf("attachments lost: %d approvals, %d capabilities, want %d and %d", len(env2.Approvals), len(env2.Capabilities), n, 2*n)
					}
					pub, err := identity.ParsePublicKeyPEM(env2.Packet.PublicKey)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := env2.Packet.VerifySignature(pub); (err == nil) != v.Expected.VerifyPacket {
						t.Fatalf("after attaching, verify = %v, want %v", err, v.Expected.VerifyPacket)
					}
					attach(env2)
					if out, err = env2.MarshalJSON(); err != nil {
						t.Fatal(err)
					}
					if got := packetBytes(t, out); string(got) != v.WirePacketJSON {
						t.Fatalf("packet bytes changed on a second attach:\n got %s", got)
					}
				}
			})
		}
	}
}

// foreignPacket returns a packet signed under rule 0.3.3 over a context in the order given
// (not sorted, as a non-reference 0.3.3 sender may write it), and its wire text as such a
// sender writes it: the signed bytes with the signature added.
func foreignPacket(t *testing.T, context string) (*Packet, string) {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := canonical.Parse([]byte(context), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ttl, risk, origin := int64(900), RiskRead, "wf"
	env, err := ParseEnvelope([]byte(loadPacketVectors(t, "packets_v0.3.3")["valid_02_typical_read.json"].WireEnvelopeJSON), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p := env.Packet
	p.wire = nil
	p.Context, p.RiskLevel, p.TTLSeconds = ctx, &risk, &ttl
	p.Provenance = &Provenance{OriginWorkflow: &origin, DelegationDepth: 1}
	pemText := identity.PublicKeyPEM(k.Public().(ed25519.PublicKey))
	p.PublicKey, p.FromAgent = pemText, identity.AgentID(pemText)
	msg, err := p.SigningBytes(nil, Rule033)
	if err != nil {
		t.Fatal(err)
	}
	p.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k, msg))
	wire := string(msg[:len(msg)-1]) + `,"signature":"` + p.Signature + `"}`
	return p, wire
}

// TestEnvelopeKeepsForeignSpellings: packets spelled otherwise than the reference's wire
// (unsorted 0.3.3 context, compact or indented JSON, escaped keys, other number and time
// spellings) keep their bytes through parse, attach, marshal, and keep verifying. A
// re-encoded copy of the same packet loses the 0.3.3 signature where the spelling carries
// the signed key order: the test would catch a return to re-encoding.
func TestEnvelopeKeepsForeignSpellings(t *testing.T) {
	indent := func(s string) string {
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(s), "", "\t"); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	cases := []struct {
		name    string
		context string
		respell func(wire string) string
		ordered bool // the signed context order differs from the sorted order
	}{
		{"unsorted context", `{"zeta": 1, "alpha": {"y": 2, "x": [3, {"q": null, "p": true}]}}`, nil, true},
		{"sorted context, compact", `{"a": 1, "b": "two"}`, nil, false},
		{"indented with tabs", `{"b": 1.5, "a": [1e-7, 0.00001]}`, indent, true},
		{"escaped key spellings", `{"b": "\u00e9", "a": 1}`, func(w string) string {
			return strings.Replace(strings.Replace(w, `"intent"`, `"\u0069ntent"`, 1), `"b":`, `"\u0062":`, 1)
		}, true},
		{"exponent and offset spellings", `{"n": 100.0}`, func(w string) string {
			w = strings.Replace(w, `"n":100.0`, `"n":1E2`, 1)
			return strings.Replace(w, `"issued_at":"2026-04-01T12:00:00Z"`, `"issued_at":"2026-04-01T12:00:00.000000+00:00"`, 1)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, wire := foreignPacket(t, c.context)
			if c.respell != nil {
				if wire2 := c.respell(wire); wire2 != wire {
					wire = wire2
				} else {
					t.Fatal("respelling changed nothing")
				}
			}
			in := `{"packet": ` + wire + `}`
			env, err := ParseEnvelope([]byte(in), Limits{})
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, in)
			}
			pub, _ := identity.ParsePublicKeyPEM(env.Packet.PublicKey)
			if r, err := env.Packet.VerifySignature(pub); err != nil || r != Rule033 {
				t.Fatalf("the foreign packet does not verify under 0.3.3 as received: %v", err)
			}
			attach(env)
			out, err := env.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if got := packetBytes(t, out); string(got) != wire {
				t.Fatalf("packet bytes changed:\n got %s\nwant %s", got, wire)
			}
			env2, err := ParseEnvelope(out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env2.Packet.VerifySignature(pub); err != nil {
				t.Fatalf("after attaching: %v", err)
			}
			// The same packet re-encoded (no wire bytes).
			fresh := *env.Packet
			fresh.wire = nil
			re, err := fresh.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			p3, err := ParsePacket(re, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p3.VerifySignature(pub); (err != nil) != c.ordered {
				t.Fatalf("re-encoded copy: verify error %v, want an error: %v", err, c.ordered)
			}
		})
	}
}

// TestWireBytesNeverStale: a caller that changes a decoded packet gets its change written,
// never the bytes as received.
func TestWireBytesNeverStale(t *testing.T) {
	vec := func(name string) string {
		return loadPacketVectors(t, "packets_v0.3.3")[name].WireEnvelopeJSON
	}
	cases := []struct {
		name, vector string
		mut          func(p *Packet)
	}{
		{"intent", "valid_02_typical_read.json", func(p *Packet) { p.Intent = "Delete every ticket" }},
		{"context value in place", "valid_02_typical_read.json", func(p *Packet) { p.Context.Obj[0].Value.Str = "cust-0001" }},
		{"context key in place", "valid_02_typical_read.json", func(p *Packet) { p.Context.Obj[0].Key = "customer_ref" }},
		{"context member dropped", "valid_02_typical_read.json", func(p *Packet) { p.Context.Obj = p.Context.Obj[1:] }},
		{"float in place", "valid_06_floats.json", func(p *Packet) { p.Context.Obj[0].Value.Float = 0.25 }},
		{"int to float", "valid_07_large_ints.json", func(p *Packet) {
			p.Context.Obj[0].Value = canonical.Value{Kind: canonical.Float, Float: 1}
		}},
		{"nested context in place", "valid_05_nested_context.json", func(p *Packet) {
			p.Context.Obj[0].Value.Obj[0].Value.Arr[0] = canonical.Value{Kind: canonical.Int, Str: "7"}
		}},
		{"action appended", "valid_02_typical_read.json", func(p *Packet) {
			p.Permissions.AllowedActions = append(p.Permissions.AllowedActions, "delete_user")
		}},
		{"action renamed in place", "valid_02_typical_read.json", func(p *Packet) { p.Permissions.AllowedActions[0] = "drop_table" }},
		{"signature", "valid_02_typical_read.json", func(p *Packet) {
			p.Signature = base64.StdEncoding.EncodeToString(make([]byte, 64))
		}},
		{"null depth set", "valid_11_provenance_depth_null.json", func(p *Packet) { p.Provenance.DelegationDepth = 3 }},
		{"absent depth set", "valid_14_delegation_depth_key_omitted.json", func(p *Packet) { p.Provenance.DelegationDepth = 1 }},
		{"absent depth, new provenance", "valid_14_delegation_depth_key_omitted.json", func(p *Packet) { p.Provenance = &Provenance{} }},
		{"null review set", "valid_12_review_null.json", func(p *Packet) { p.Constraints.RequiresHumanReview = true }},
		{"constraints dropped", "valid_12_review_null.json", func(p *Packet) { p.Constraints = nil }},
		{"omitted permissions filled", "valid_15_permission_keys_omitted.json", func(p *Packet) {
			n := int64(3)
			p.Permissions.MaxToolCalls = &n
		}},
		{"expiry", "valid_02_typical_read.json", func(p *Packet) { p.ExpiresAt.Micros += 1e6 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(vec(c.vector)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			p := env.Packet
			before := p.wire
			c.mut(p)
			out, err := env.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			got := packetBytes(t, out)
			if string(got) == string(before) {
				t.Fatal("the changed packet was written as the bytes received")
			}
			q, err := ParsePacket(got, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := q.SigningBytes(nil, Rule033)
			b, _ := p.SigningBytes(nil, Rule033)
			if !bytes.Equal(a, b) || q.Signature != p.Signature {
				t.Fatalf("written packet is not the changed one:\n got %s\nwant %s", a, b)
			}
		})
	}
}

// TestModelDefaultsSignedAsReference: absent or null optional fields are signed as the
// reference model fills them in, and a null stays null only while the field is unchanged.
func TestModelDefaultsSignedAsReference(t *testing.T) {
	vecs := loadPacketVectors(t, "packets_v0.4.0")
	parse := func(t *testing.T, name string) *Packet {
		t.Helper()
		env, err := ParseEnvelope([]byte(vecs[name].WireEnvelopeJSON), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return env.Packet
	}
	signed := func(t *testing.T, p *Packet) string {
		t.Helper()
		b, err := p.SigningBytes(nil, Rule04)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, vector string
		mut          func(p *Packet)
		want         string
	}{
		{"null depth", "valid_11_provenance_depth_null.json", nil, `"delegation_depth":null`},
		{"absent depth", "valid_14_delegation_depth_key_omitted.json", nil, `"delegation_depth":null`},
		{"null depth, set", "valid_11_provenance_depth_null.json", func(p *Packet) { p.Provenance.DelegationDepth = 2 }, `"delegation_depth":2`},
		{"null depth, set and reset", "valid_11_provenance_depth_null.json", func(p *Packet) {
			p.Provenance.DelegationDepth = 2
			p.Provenance.DelegationDepth = 0
		}, `"delegation_depth":null`},
		{"null depth, copied packet", "valid_11_provenance_depth_null.json", func(p *Packet) {
			q := *p
			*p = Packet{}
			*p = q
		}, `"delegation_depth":null`},
		{"null depth, new provenance", "valid_11_provenance_depth_null.json", func(p *Packet) {
			p.Provenance = &Provenance{OriginWorkflow: p.Provenance.OriginWorkflow}
		}, `"delegation_depth":0`},
		{"null review", "valid_12_review_null.json", nil, `"requires_human_review":null`},
		{"null review, set", "valid_12_review_null.json", func(p *Packet) { p.Constraints.RequiresHumanReview = true }, `"requires_human_review":true`},
		{"null review, new constraints", "valid_12_review_null.json", func(p *Packet) { p.Constraints = &Constraints{} }, `"requires_human_review":false`},
		{"omitted permissions", "valid_15_permission_keys_omitted.json", nil, `"permissions":{"allowed_actions":[],"max_tool_calls":null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := parse(t, c.vector)
			if c.mut != nil {
				c.mut(p)
			}
			if got := signed(t, p); !strings.Contains(got, c.want) {
				t.Fatalf("signed bytes lack %s:\n%s", c.want, got)
			}
		})
	}
	// Wire spellings the reference model accepts, and the bytes it signs for them.
	base := vecs["valid_02_typical_read.json"].WireEnvelopeJSON
	perms := `"permissions": {"allowed_actions": ["read_tickets", "search_kb", "draft_reply"], "max_tool_calls": null}`
	for _, c := range []struct{ name, old, new, want string }{
		{"empty provenance", `"provenance": null`, `"provenance": {}`, `"provenance":{"delegation_depth":null,"origin_workflow":null}`},
		{"provenance depth only", `"provenance": null`, `"provenance": {"delegation_depth": 4}`, `"provenance":{"delegation_depth":4,"origin_workflow":null}`},
		{"provenance all null", `"provenance": null`, `"provenance": {"delegation_depth": null, "origin_workflow": null}`, `"provenance":{"delegation_depth":null,"origin_workflow":null}`},
		{"empty constraints", `"constraints": null`, `"constraints": {}`, `"constraints":{"data_boundary":null,"max_runtime_seconds":null,"requires_human_review":false}`},
		{"null review only", `"constraints": null`, `"constraints": {"requires_human_review": null}`, `"constraints":{"data_boundary":null,"max_runtime_seconds":null,"requires_human_review":null}`},
		{"empty permissions", perms, `"permissions": {}`, `"permissions":{"allowed_actions":[],"max_tool_calls":null}`},
		{"tool limit only", perms, `"permissions": {"max_tool_calls": 3}`, `"permissions":{"allowed_actions":[],"max_tool_calls":3}`},
		{"actions only", perms, `"permissions": {"allowed_actions": ["a"]}`, `"permissions":{"allowed_actions":["a"],"max_tool_calls":null}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("anchor %q not in the vector", c.old)
			}
			env, err := ParseEnvelope([]byte(strings.Replace(base, c.old, c.new, 1)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := signed(t, env.Packet); !strings.Contains(got, c.want) {
				t.Fatalf("signed bytes lack %s:\n%s", c.want, got)
			}
		})
	}
	// What a null means to the receiver: depth 0, no review required.
	if p := parse(t, "valid_11_provenance_depth_null.json"); p.Provenance.DelegationDepth != 0 {
		t.Error("null depth is not 0")
	}
	if p := parse(t, "valid_12_review_null.json"); p.Constraints.RequiresHumanReview {
		t.Error("null review requires review")
	}
	// Re-signing a decoded packet with a null field: the new signature covers the null, and
	// the re-encoded packet verifies.
	p := parse(t, "valid_11_provenance_depth_null.json")
	k, _ := identity.Generate()
	p.FromAgent = ""
	if err := p.Sign(identity.NewKeySigner(k), Rule033); err != nil {
		t.Fatal(err)
	}
	out, err := (&Envelope{Packet: p}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"delegation_depth": null`) {
		t.Errorf("re-signed packet lost its null depth: %s", out)
	}
	env, err := ParseEnvelope(out, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Packet.VerifySignature(k.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("re-signed packet: %v", err)
	}
}

// TestMemberSpan checks the span scanner on valid envelopes with hostile spellings, and
// that it reports false, without panicking, on text that is not what it expects.
func TestMemberSpan(t *testing.T) {
	for _, c := range []struct{ in, key, want string }{
		{`{"packet": {"a": 1}}`, "packet", `{"a": 1}`},
		{`{"chain": {"packet": [1]}, "packet": {"a": "}"}}`, "packet", `{"a": "}"}`},
		{` { "\u0070acket" :  {"s": "\"{["} , "x": 1 } `, "packet", `{"s": "\"{["}`},
		{`{"a": [1, {"b": "]"}], "packet": [], "c": null}`, "packet", `[]`},
		{`{"a": -1.5e+3, "packet": true}`, "packet", `true`},
		{`{"a": "x\\", "packet": 7}`, "packet", `7`},
	} {
		start, end, ok := memberSpan([]byte(c.in), c.key)
		if !ok || c.in[start:end] != c.want {
			t.Errorf("%s: got %v %q, want %q", c.in, ok, c.in[min(start, end):end], c.want)
		}
	}
	for _, in := range []string{``, `[]`, `{`, `{"packet"`, `{"packet":`, `{"packet": {`, `{"a": 1}`, `{"a" 1}`, `{"a": "`, `{"a": 1 "packet": 2}`, `{"\ud800": 1}`} {
		if _, _, ok := memberSpan([]byte(in), "packet"); ok {
			t.Errorf("%q: found a packet", in)
		}
	}
}

// FuzzMemberSpan: on any object canonical.Parse accepts, the span of every member is that
// member's value (it parses to the same value); on any input, no panic.
func FuzzMemberSpan(f *testing.F) {
	for _, v := range loadPacketVectors(f, "packets_v0.3.3") {
		f.Add([]byte(v.WireEnvelopeJSON))
	}
	f.Add([]byte(`{"\u0070acket": {"s": "\"}"}, "a": [{"b": "]"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		memberSpan(data, "packet") // never panics, whatever data is
		v, err := canonical.Parse(data, Limits{})
		if err != nil || v.Kind != canonical.Object {
			return
		}
		for i := range v.Obj {
			m := &v.Obj[i]
			start, end, ok := memberSpan(data, m.Key)
			if !ok {
				t.Fatalf("member %q not found in %s", m.Key, data)
			}
			got, err := canonical.Parse(data[start:end], Limits{})
			if err != nil {
				t.Fatalf("span of %q is not a JSON value: %q", m.Key, data[start:end])
			}
			a, err1 := canonical.Marshal(&got, canonical.PacketV033())
			b, err2 := canonical.Marshal(&m.Value, canonical.PacketV033())
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Fatalf("span of %q holds another value: %s, want %s", m.Key, a, b)
			}
		}
	})
}

// The kept text aliases the caller's buffer: a caller that reuses the buffer after parsing
// must get the packet re-encoded, never the new contents of its buffer.
func TestWireTextSurvivesABufferReused(t *testing.T) {
	n := 0
	for _, dir := range []string{"packets_v0.4.0", "packets_v0.3.3"} {
		for name, v := range loadPacketVectors(t, dir) {
			if !strings.HasPrefix(name, "valid") {
				continue
			}
			n++
			t.Run(dir+"/"+name, func(t *testing.T) {
				buf := []byte(v.WireEnvelopeJSON)
				env, err := ParseEnvelope(buf, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				for _, reuse := range []func([]byte){
					func(b []byte) { clear(b) },
					func(b []byte) { copy(b, strings.Replace(string(b), "a", "b", -1)) },
					func(b []byte) { copy(b, `{"packet": {}}`) },
				} {
					reuse(buf)
					out, err := env.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					again, err := ParseEnvelope(out, Limits{})
					if err != nil {
						t.Fatalf("the packet written after the buffer changed does not parse: %v", err)
					}
					if _, err := again.Packet.VerifySignature(mustKey(t, again.Packet.PublicKey)); err != nil {
						t.Fatalf("the packet written after the buffer changed does not verify: %v", err)
					}
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no valid vectors found")
	}
}

func mustKey(t *testing.T, pemText string) ed25519.PublicKey {
	t.Helper()
	k, err := identity.ParsePublicKeyPEM(pemText)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
