package receipt_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/receipt"
)

// wireOf returns the wire form of a valid receipt, for hostile edits.
func wireOf(t *testing.T) string {
	t.Helper()
	f := newFixture(t)
	env := f.handoff(t, f.bob)
	p := params()
	p.DependsOn = [][32]byte{{1}, {2}}
	b, err := f.sign(t, f.bob, env, p).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// field returns the `"name":value` member of a compact wire form.
func field(t *testing.T, wire, name string) string {
	t.Helper()
	i := strings.Index(wire, `"`+name+`":`)
	if i < 0 {
		t.Fatalf("no %s in %s", name, wire)
	}
	rest := wire[i+len(name)+3:]
	depth, inStr := 0, false
	for j := 0; j < len(rest); j++ {
		switch c := rest[j]; {
		case inStr && c == '\\':
			j++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth == 0 {
				return wire[i : i+len(name)+3+j]
			}
			depth--
		case c == ',' && depth == 0:
			return wire[i : i+len(name)+3+j]
		}
	}
	t.Fatalf("unterminated %s", name)
	return ""
}

func TestParseRejects(t *testing.T) {
	wire := wireOf(t)
	if _, err := receipt.Parse([]byte(wire)); err != nil {
		t.Fatalf("the base receipt does not parse: %v", err)
	}
	set := func(name, value string) string {
		return strings.Replace(wire, field(t, wire, name), `"`+name+`":`+value, 1)
	}
	drop := func(name string) string {
		f := field(t, wire, name)
		if strings.Contains(wire, f+",") {
			return strings.Replace(wire, f+",", "", 1)
		}
		return strings.Replace(wire, ","+f, "", 1)
	}
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		name, input string
		code        reason.Code
	}{
		{"empty", "", reason.MalformedEnvelope},
		{"not an object", `[]`, reason.MalformedEnvelope},
		{"trailing data", wire + "{}", reason.MalformedEnvelope},
		{"unknown field", strings.Replace(wire, `{`, `{"extra":1,`, 1), reason.MalformedEnvelope},
		{"duplicate field", strings.Replace(wire, `{`, `{"status":"OK",`, 1), reason.MalformedEnvelope},
		{"missing reason_hash", drop("reason_hash"), reason.MalformedEnvelope},
		{"missing signature", drop("signature"), reason.MalformedEnvelope},
		{"missing depends_on", drop("depends_on"), reason.MalformedEnvelope},
		{"other version", set("version", `"trusthandoff/receipt/v2"`), reason.MalformedEnvelope},
		{"other algorithm", set("signature_algo", `"Ed25519"`), reason.UnsupportedAlgorithm},
		{"status lower case", set("status", `"ok"`), reason.MalformedEnvelope},
		{"status a number", set("status", `1`), reason.MalformedEnvelope},
		{"receipt_id empty", set("receipt_id", `""`), reason.MalformedEnvelope},
		{"receipt_id with a space", set("receipt_id", `"a b"`), reason.MalformedEnvelope},
		{"packet_id empty", set("packet_id", `""`), reason.MalformedEnvelope},
		{"packet_id too long", set("packet_id", `"`+strings.Repeat("p", receipt.MaxIDLen+1)+`"`), reason.MalformedEnvelope},
		{"executor not an agent id", set("executor", `"bob"`), reason.MalformedEnvelope},
		{"packet_digest upper case", set("packet_digest", `"`+strings.ToUpper(hex64)+`"`), reason.MalformedEnvelope},
		{"packet_digest prefixed", set("packet_digest", `"sha256:`+hex64+`"`), reason.MalformedEnvelope},
		{"packet_digest short", set("packet_digest", `"`+hex64[2:]+`"`), reason.MalformedEnvelope},
		{"outcome_hash without prefix", set("outcome_hash", `"`+hex64+`"`), reason.MalformedEnvelope},
		{"outcome_hash other algorithm", set("outcome_hash", `"sha512:`+hex64+`"`), reason.MalformedEnvelope},
		{"outcome_hash null", set("outcome_hash", `null`), reason.MalformedEnvelope},
		{"reason_hash not a hash", set("reason_hash", `"because"`), reason.MalformedEnvelope},
		{"started_at with an offset", set("started_at", `"2026-04-01T12:00:10+00:00"`), reason.MalformedEnvelope},
		{"started_at naive", set("started_at", `"2026-04-01T12:00:10"`), reason.MalformedEnvelope},
		{"started_at other zone", set("started_at", `"2026-04-01T14:00:10+02:00"`), reason.MalformedEnvelope},
		{"started_at trailing zeros", set("started_at", `"2026-04-01T12:00:10.000000Z"`), reason.MalformedEnvelope},
		{"finished before started", set("finished_at", `"2026-04-01T12:00:09Z"`), reason.MalformedEnvelope},
		{"nonce short", set("nonce", `"abcd"`), reason.MalformedEnvelope},
		{"nonce upper case", set("nonce", `"`+strings.Repeat("AB", 16)+`"`), reason.MalformedEnvelope},
		{"nonce a number", set("nonce", `12345`), reason.MalformedEnvelope},
		{"depends_on not a list", set("depends_on", `"`+hex64+`"`), reason.MalformedEnvelope},
		{"depends_on duplicate", set("depends_on", `["`+hex64+`","`+hex64+`"]`), reason.MalformedEnvelope},
		{"depends_on nested", set("depends_on", `[["`+hex64+`"]]`), reason.MalformedEnvelope},
		{"depends_on null", set("depends_on", `null`), reason.MalformedEnvelope},
		{"depends_on too long", set("depends_on", `[`+strings.Repeat(`"`+hex64+`",`, receipt.MaxDependsOn)+`"`+strings.Repeat("cd", 32)+`"]`), reason.MalformedEnvelope},
		{"signature url-safe", set("signature", `"`+strings.Repeat("_", 86)+`=="`), reason.MalformedEnvelope},
		{"signature short", set("signature", `"AAAA"`), reason.MalformedEnvelope},
		{"public_key not PEM", set("public_key", `"key"`), reason.MalformedEnvelope},
		{"public_key small order", set("public_key", `"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n"`), reason.MalformedEnvelope},
		{"invalid UTF-8", strings.Replace(wire, `"packet_id":"`, "\"packet_id\":\"\xff", 1), reason.MalformedEnvelope},
		{"too large", `{"x":"` + strings.Repeat("a", receipt.MaxSize) + `"}`, reason.MalformedEnvelope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := receipt.Parse([]byte(tc.input))
			if err == nil {
				t.Fatalf("Parse accepted %+v", r)
			}
			if got := reason.Of(err, ""); got != tc.code {
				t.Fatalf("code %s, want %s: %v", got, tc.code, err)
			}
			if !errors.Is(err, receipt.ErrMalformed) {
				t.Fatalf("%v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestParseAcceptsNullReasonAndAnyMemberOrder(t *testing.T) {
	wire := wireOf(t)
	r, err := receipt.Parse([]byte(wire))
	if err != nil {
		t.Fatal(err)
	}
	if r.ReasonHash != nil {
		t.Fatal("null reason_hash decoded as a hash")
	}
	// Members in another order, spaces between tokens: the same receipt.
	status := field(t, wire, "status")
	reordered := "{ " + status + " , " + strings.TrimPrefix(strings.Replace(wire, ","+status, "", 1), "{")
	r2, err := receipt.Parse([]byte(reordered))
	if err != nil {
		t.Fatalf("reordered: %v\n%s", err, reordered)
	}
	d1, _ := r.Digest()
	d2, _ := r2.Digest()
	if d1 != d2 {
		t.Fatal("member order changed the digest")
	}
}
