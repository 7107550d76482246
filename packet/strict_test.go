package packet

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/canonical"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

// TestStrictParsing mutates a valid reference envelope into each hostile spelling the
// reference accepts and this project rejects.
func TestStrictParsing(t *testing.T) {
	base := loadPacketVectors(t, "packets_v0.4.0")["valid_02_typical_read.json"].WireEnvelopeJSON
	if _, err := ParseEnvelope([]byte(base), Limits{}); err != nil {
		t.Fatalf("base vector: %v", err)
	}
	sig := `"signature": "`
	perms := `"permissions": {"allowed_actions": ["read_tickets", "search_kb", "draft_reply"], "max_tool_calls": null}` // only in the packet (the chain's is "delegated_permissions")
	cases := []struct{ name, old, new string }{
		{"duplicate packet key", `"nonce": `, `"nonce": "x", "nonce": `},
		{"unknown packet field", `"goal": null`, `"goal": null, "is_admin": true`},
		{"unknown envelope field", `{"chain"`, `{"extra": 1, "chain"`},
		{"integer as string", `"ttl_seconds": 900`, `"ttl_seconds": "900"`},
		{"integer as float", `"ttl_seconds": 900`, `"ttl_seconds": 900.0`},
		{"boolean as string", `"constraints": null`, `"constraints": {"requires_human_review": "yes"}`},
		{"string as number", `"intent": "`, `"intent": 5, "x": "`},
		{"NaN in context", `"context": {`, `"context": {"n": NaN, `},
		{"naive datetime", `"issued_at": "2026-04-01T12:00:00+00:00"`, `"issued_at": "2026-04-01T12:00:00"`},
		{"nanosecond datetime", `"issued_at": "2026-04-01T12:00:00+00:00"`, `"issued_at": "2026-04-01T12:00:00.000000001+00:00"`},
		{"short signature", sig, sig + `AAAA`},
		{"unpadded signature", `==", "signature_algo"`, `", "signature_algo"`},
		{"url-safe signature", sig, sig + `-_`},
		{"lone surrogate", `"intent": "`, `"intent": "\ud800`},
		{"context not an object", `"context": {`, `"context": [], "y": {`},
		{"actions not strings", `"permissions": {"allowed_actions": [`, `"permissions": {"allowed_actions": [1, `},
		{"unknown permissions field", `"permissions": {"allowed_actions"`, `"permissions": {"admin": true, "allowed_actions"`},
		{"no packet", `"packet": {`, `"pocket": {`},
		{"huge ttl", `"ttl_seconds": 900`, `"ttl_seconds": 99999999999999999999`},
		// null and absent optional fields are the model's defaults; other types are not.
		{"depth as string", `"provenance": null`, `"provenance": {"delegation_depth": "2"}`},
		{"depth as float", `"provenance": null`, `"provenance": {"delegation_depth": 2.0}`},
		{"depth as boolean", `"provenance": null`, `"provenance": {"delegation_depth": false}`},
		{"depth out of range", `"provenance": null`, `"provenance": {"delegation_depth": 9223372036854775808}`},
		{"unknown provenance field", `"provenance": null`, `"provenance": {"depth": 1}`},
		{"review as integer", `"constraints": null`, `"constraints": {"requires_human_review": 0}`},
		{"review as empty string", `"constraints": null`, `"constraints": {"requires_human_review": ""}`},
		{"actions null", perms, `"permissions": {"allowed_actions": null}`},
		{"actions an object", perms, `"permissions": {"allowed_actions": {}}`},
		{"permissions null", perms, `"permissions": null`},
		{"permissions an array", perms, `"permissions": []`},
		{"max tool calls as string", perms, `"permissions": {"max_tool_calls": "3"}`},
		// Required by the model: no default.
		{"no signature_algo", `, "signature_algo": "Ed25519"`, ``},
		{"no permissions", perms + `, `, ``},
		{"no intent", `"intent": "Summarize the open support tickets for the customer", `, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("mutation anchor %q not in the vector", c.old)
			}
			in := strings.Replace(base, c.old, c.new, 1)
			_, err := ParseEnvelope([]byte(in), Limits{})
			if reason.Of(err, "") != reason.MalformedEnvelope {
				t.Fatalf("got %v, want malformed_envelope", err)
			}
		})
	}
	if _, err := ParseEnvelope([]byte(base), Limits{MaxBytes: 512}); reason.Of(err, "") != reason.MalformedEnvelope {
		t.Errorf("oversize envelope: %v", err)
	}
	if _, err := ParseEnvelope([]byte(strings.Replace(base, `"context": {`, `"context": {"d": `+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`, `, 1)), Limits{}); err == nil {
		t.Error("over-deep context accepted")
	}
}

// TestFieldErrors checks that a wrong-typed field is malformed_envelope, still a
// canonical.FieldError underneath, and named in the message.
func TestFieldErrors(t *testing.T) {
	base := loadPacketVectors(t, "packets_v0.4.0")["valid_02_typical_read.json"].WireEnvelopeJSON
	cases := []struct{ field, old, new string }{
		{"ttl_seconds", `"ttl_seconds": 900`, `"ttl_seconds": "900"`},
		{"intent", `"intent": "`, `"intent": 5, "x": "`},
		{"issued_at", `"issued_at": "2026-04-01T12:00:00+00:00"`, `"issued_at": "2026-04-01T12:00:00"`},
		{"permissions.allowed_actions[0]", `"permissions": {"allowed_actions": [`, `"permissions": {"allowed_actions": [1, `},
		{"constraints.requires_human_review", `"constraints": null`, `"constraints": {"requires_human_review": "yes"}`},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("mutation anchor %q not in the vector", c.old)
			}
			_, err := ParseEnvelope([]byte(strings.Replace(base, c.old, c.new, 1)), Limits{})
			if reason.Of(err, "") != reason.MalformedEnvelope || !errors.Is(err, canonical.ErrFieldType) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("got %v, want malformed_envelope naming %s and wrapping canonical.ErrFieldType", err, c.field)
			}
		})
	}
}

func TestValidateTimeTable(t *testing.T) {
	v := loadPacketVectors(t, "packets_v0.4.0")["valid_02_typical_read.json"]
	env, err := ParseEnvelope([]byte(v.WireEnvelopeJSON), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p0 := env.Packet
	issued := p0.IssuedAt.Time()
	type tc struct {
		name   string
		mut    func(p *Packet)
		offset int64 // seconds after issued_at
		pol    TimePolicy
		want   reason.Code
	}
	str := func(s string) *string { return &s }
	i64 := func(n int64) *int64 { return &n }
	cases := []tc{
		{"valid", nil, 30, DefaultTimePolicy(), reason.OK},
		{"skew edge", nil, -30, DefaultTimePolicy(), reason.OK},
		{"beyond skew", nil, -31, DefaultTimePolicy(), reason.IssuedInFuture},
		{"custom skew", nil, -31, TimePolicy{Skew: 60e9}, reason.OK},
		{"expiry edge", nil, 900, DefaultTimePolicy(), reason.OK},
		{"expired", nil, 901, DefaultTimePolicy(), reason.Expired},
		{"grace", nil, 901, TimePolicy{Skew: DefaultSkew, Grace: 5e9}, reason.OK},
		{"ttl mismatch", func(p *Packet) { p.TTLSeconds = i64(899) }, 30, DefaultTimePolicy(), reason.TTLPolicyMismatch},
		{"unknown risk", func(p *Packet) { p.RiskLevel = str("medium") }, 30, DefaultTimePolicy(), reason.UnsupportedRisk},
		{"write window for read label, strict", func(p *Packet) { p.Permissions.AllowedActions = []string{"delete_user"} }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.TTLPolicyMismatch},
		{"write label, read window, default mode with ttl", func(p *Packet) { p.RiskLevel = str("write") }, 30, DefaultTimePolicy(), reason.OK},
		{"write label, read window, strict", func(p *Packet) { p.RiskLevel = str("write") }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.TTLPolicyMismatch},
		{"no risk level, strict", func(p *Packet) { p.RiskLevel = nil }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.TTLPolicyMismatch},
		{"legacy: no risk, no ttl, read actions", func(p *Packet) { p.RiskLevel, p.TTLSeconds = nil, nil }, 30, DefaultTimePolicy(), reason.OK},
		{"no ttl: window must equal the risk TTL", func(p *Packet) { p.TTLSeconds = nil; p.RiskLevel = str("write") }, 30, DefaultTimePolicy(), reason.TTLPolicyMismatch},
		{"empty window", func(p *Packet) { p.ExpiresAt = p.IssuedAt }, 0, DefaultTimePolicy(), reason.MalformedTimeWindow},
		// Zero means zero: a zero skew allows none, a zero grace no lateness.
		{"zero skew: issued now", nil, 0, TimePolicy{}, reason.OK},
		{"zero skew: 1s in the future", nil, -1, TimePolicy{}, reason.IssuedInFuture},
		{"zero skew: 1us in the future", nil, 0, TimePolicy{}, reason.OK},
		{"zero grace: expiry instant", nil, 900, TimePolicy{}, reason.OK},
		{"zero grace: 1s late", nil, 901, TimePolicy{}, reason.Expired},
		// Strict mode classifies by allow-list: a look-alike of a read verb is a write,
		// so its 900 s window exceeds the write TTL.
		{"strict: look-alike read is write", func(p *Packet) { p.Permissions.AllowedActions = []string{"r\u0435ad_file"} }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.TTLPolicyMismatch},
		{"strict: unknown verb is write", func(p *Packet) { p.Permissions.AllowedActions = []string{"issue_refund"} }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.TTLPolicyMismatch},
		{"strict: read verb is read", func(p *Packet) { p.Permissions.AllowedActions = []string{"read_file", "search.kb"} }, 30, TimePolicy{Skew: DefaultSkew, Strict: true}, reason.OK},
		{"default mode: unknown verb is read", func(p *Packet) { p.Permissions.AllowedActions = []string{"issue_refund"} }, 30, DefaultTimePolicy(), reason.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := *p0
			if c.mut != nil {
				c.mut(&p)
			}
			err := ValidateTime(&p, issued.Add(timeSeconds(c.offset)), &c.pol)
			if got := reason.Of(err, ""); got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

func TestStrictActionRisk(t *testing.T) {
	for action, want := range map[string]string{
		"read":             RiskRead,
		"read_tickets":     RiskRead,
		"search.kb":        RiskRead,
		"get:user/42":      RiskRead,
		"list-files":       RiskRead,
		"draft_reply":      RiskRead,
		"summarize":        RiskRead,
		"preview_2":        RiskRead,
		"issue_refund":     RiskWrite, // unknown verb
		"drop_table":       RiskWrite,
		"send_email":       RiskWrite,
		"readall":          RiskWrite, // first word is "readall", not "read"
		"reader_mode":      RiskWrite,
		"Read_file":        RiskWrite, // upper case
		"READ":             RiskWrite,
		"wr\u0131te_file":  RiskWrite, // dotless i
		"r\u0435ad_file":   RiskWrite, // Cyrillic e
		"\uff52ead_file":   RiskWrite, // full-width r
		"read\u200b_file":  RiskWrite, // zero-width space
		"\u200bread_file":  RiskWrite,
		" read_file":       RiskWrite, // leading space
		"read_file ":       RiskWrite, // trailing space
		"read\tfile":       RiskWrite,
		"read\x00":         RiskWrite,
		"":                 RiskWrite,
		"_read":            RiskWrite, // empty first word
		"read_file\u00a0":  RiskWrite, // no-break space
		"read;delete_user": RiskWrite,
		"read\nwrite":      RiskWrite,
		"\xff\xfe":         RiskWrite, // invalid UTF-8
	} {
		if got := StrictActionRisk(action); got != want {
			t.Errorf("StrictActionRisk(%q) = %q, want %q", action, got, want)
		}
	}
}

func TestDefaultActionRisk(t *testing.T) {
	for action, want := range map[string]string{
		"send_email": RiskWrite, "DELETE_user": RiskWrite, "post": RiskWrite, "transfer_funds": RiskWrite,
		"draft_reply": RiskRead, "read_tickets": RiskRead, "search_kb": RiskRead, "summarize": RiskRead,
	} {
		if got := DefaultActionRisk(action); got != want {
			t.Errorf("%s: %s, want %s", action, got, want)
		}
	}
}

func timeSeconds(s int64) time.Duration { return time.Duration(s) * time.Second }

func TestSignRejectsInvalidUTF8(t *testing.T) {
	k, _ := identity.Generate()
	for _, mut := range []func(p *Packet){
		func(p *Packet) { p.Intent = "bad \xff byte" },
		func(p *Packet) { p.Permissions.AllowedActions = []string{"read\xc0"} },
		func(p *Packet) {
			p.Context = canonical.Value{Kind: canonical.Object, Obj: []canonical.Member{{Key: "k\xfe", Value: canonical.Value{}}}}
		},
	} {
		p := &Packet{PacketID: "p", TaskID: "t", ToAgent: "agent:x", Nonce: "n", Intent: "i"}
		mut(p)
		if err := p.Sign(identity.NewKeySigner(k), Rule04); err == nil {
			t.Error("signed a packet with invalid UTF-8")
		}
	}
}
