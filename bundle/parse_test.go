package bundle_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/bundle"
	"github.com/trusthandoff/trusthandoff-go/identity"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/reason"
)

var parseT0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// sampleEnvelope is a signed envelope from a fixed key (deterministic apart from ids).
func sampleEnvelope(t testing.TB) []byte {
	t.Helper()
	s := identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	env, err := packet.Build(s, "agent:bob", "Summarize the tickets", packet.WithActions("read_tickets"),
		packet.WithIssuedAt(parseT0), packet.WithTaskID("task-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleBundle is a well-formed bundle text with one step; mutate edits its pieces.
func sampleBundle(t testing.TB, mutate func(m map[string]string)) []byte {
	t.Helper()
	m := map[string]string{
		"version":  `"trusthandoff/bundle/v1"`,
		"workflow": `{"kind": "task_id", "id": "task-1"}`,
		"created":  `"2026-04-01T12:10:00Z"`,
		"envelope": string(sampleEnvelope(t)),
		"receipt":  `null`,
		"outcome":  `"` + base64.StdEncoding.EncodeToString([]byte("result")) + `"`,
		"audit":    `[{"index": 0, "record": "{\"seq\":1}", "proof": ["` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"]}]`,
		"extra":    ``,
		"stepx":    ``,
		"tail":     `, "checkpoint": null, "registry": null`,
	}
	if mutate != nil {
		mutate(m)
	}
	return []byte(`{"version": ` + m["version"] + `, "workflow": ` + m["workflow"] + `, "created_at": ` + m["created"] +
		`, "steps": [{"envelope": ` + m["envelope"] + `, "receipt": ` + m["receipt"] + `, "outcome": ` + m["outcome"] +
		`, "audit": ` + m["audit"] + m["stepx"] + `}]` + m["tail"] + m["extra"] + `}`)
}

func TestParseAcceptsAndRoundTrips(t *testing.T) {
	data := sampleBundle(t, nil)
	b, err := bundle.Parse(data, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != bundle.Version || b.Workflow != (bundle.Workflow{Kind: bundle.ByTaskID, ID: "task-1"}) || len(b.Steps) != 1 {
		t.Fatalf("parsed %+v", b)
	}
	s := b.Steps[0]
	if string(s.Outcome) != "result" || s.Receipt != nil || len(s.Audit) != 1 || s.Audit[0].Record != `{"seq":1}` || len(s.Audit[0].Proof) != 1 {
		t.Fatalf("step %+v", s)
	}
	if !b.CreatedAt.Equal(parseT0.Add(10 * time.Minute)) {
		t.Fatalf("created_at %v", b.CreatedAt)
	}
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := bundle.Parse(out, bundle.Limits{})
	if err != nil {
		t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
	}
	out2, _ := b2.Marshal()
	if !bytes.Equal(out, out2) {
		t.Fatalf("not stable:\n%s\n%s", out, out2)
	}
	// The envelope survives byte for byte up to whitespace, and still verifies its signature.
	env, err := packet.ParseEnvelope(b2.Steps[0].Envelope, packet.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Packet.VerifySignature(identity.NewKeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))).Public()); err != nil {
		t.Fatal(err)
	}
}

func TestParseRejects(t *testing.T) {
	zero32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name   string
		mutate func(m map[string]string)
		raw    []byte
		path   string // the part the error names ("" = any)
	}{
		{name: "not JSON", raw: []byte(`{"version": `)},
		{name: "trailing data", raw: append(sampleBundle(t, nil), []byte(` {}`)...)},
		{name: "not an object", raw: []byte(`[]`)},
		{name: "duplicate key", mutate: func(m map[string]string) { m["extra"] = `, "version": "trusthandoff/bundle/v1"` }},
		{name: "unknown top field", mutate: func(m map[string]string) { m["extra"] = `, "signed_by_us": true` }},
		{name: "case-folded key", mutate: func(m map[string]string) { m["extra"] = `, "Checkpoint": "x"` }},
		{name: "unknown step field", mutate: func(m map[string]string) { m["stepx"] = `, "note": "trust me"` }, path: "steps[0]"},
		{name: "wrong version", mutate: func(m map[string]string) { m["version"] = `"trusthandoff/bundle/v2"` }, path: "version"},
		{name: "version not a string", mutate: func(m map[string]string) { m["version"] = `1` }, path: "version"},
		{name: "workflow kind unknown", mutate: func(m map[string]string) { m["workflow"] = `{"kind": "user", "id": "x"}` }, path: "workflow.kind"},
		{name: "workflow id empty", mutate: func(m map[string]string) { m["workflow"] = `{"kind": "task_id", "id": ""}` }, path: "workflow.id"},
		{name: "workflow extra field", mutate: func(m map[string]string) { m["workflow"] = `{"kind": "task_id", "id": "x", "by": "me"}` }, path: "workflow"},
		{name: "created_at naive", mutate: func(m map[string]string) { m["created"] = `"2026-04-01T12:10:00"` }, path: "created_at"},
		{name: "created_at number", mutate: func(m map[string]string) { m["created"] = `1700000000` }, path: "created_at"},
		{name: "no steps", raw: []byte(`{"version": "trusthandoff/bundle/v1", "workflow": {"kind": "task_id", "id": "t"}, "created_at": "2026-04-01T12:10:00Z", "steps": []}`), path: "steps"},
		{name: "missing steps", raw: []byte(`{"version": "trusthandoff/bundle/v1", "workflow": {"kind": "task_id", "id": "t"}, "created_at": "2026-04-01T12:10:00Z"}`)},
		{name: "envelope with unknown field", mutate: func(m map[string]string) {
			m["envelope"] = strings.Replace(m["envelope"], `{`, `{"trusted": true, `, 1)
		}, path: "steps[0].envelope"},
		{name: "envelope not an object", mutate: func(m map[string]string) { m["envelope"] = `"e30="` }, path: "steps[0].envelope"},
		{name: "receipt not an object", mutate: func(m map[string]string) { m["receipt"] = `"r"` }, path: "steps[0].receipt"},
		{name: "outcome not base64", mutate: func(m map[string]string) { m["outcome"] = `"not base64!"` }, path: "steps[0].outcome"},
		{name: "outcome unpadded", mutate: func(m map[string]string) { m["outcome"] = `"aGVsbG8"` }, path: "steps[0].outcome"},
		{name: "outcome non-canonical bits", mutate: func(m map[string]string) { m["outcome"] = `"aGVsbG9="` }, path: "steps[0].outcome"},
		{name: "audit index negative", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": -1, "record": "{}", "proof": []}]`
		}, path: "steps[0].audit[0].index"},
		{name: "audit index float", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 1.0, "record": "{}", "proof": []}]`
		}, path: "steps[0].audit[0].index"},
		{name: "audit index too big", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 18446744073709551616, "record": "{}", "proof": []}]`
		}, path: "steps[0].audit[0].index"},
		{name: "audit record two lines", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 0, "record": "{}\n{}", "proof": []}]`
		}, path: "steps[0].audit[0].record"},
		{name: "audit proof hash short", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 0, "record": "{}", "proof": ["AAAA"]}]`
		}, path: "steps[0].audit[0].proof[0]"},
		{name: "audit proof too long", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 0, "record": "{}", "proof": [` + strings.Repeat(`"`+zero32+`",`, 64) + `"` + zero32 + `"]}]`
		}, path: "steps[0].audit[0].proof"},
		{name: "audit entry missing proof", mutate: func(m map[string]string) {
			m["audit"] = `[{"index": 0, "record": "{}"}]`
		}, path: "steps[0].audit[0]"},
		{name: "checkpoint not a string", mutate: func(m map[string]string) { m["tail"] = `, "checkpoint": 5` }, path: "checkpoint"},
		{name: "registry not a registry", mutate: func(m map[string]string) { m["tail"] = `, "registry": {"agents": {}}` }, path: "registry"},
		{name: "registry with unknown field", mutate: func(m map[string]string) {
			m["tail"] = `, "registry": {"version": 1, "agents": {}, "trust_all": true}`
		}, path: "registry"},
		{name: "invalid UTF-8", mutate: func(m map[string]string) { m["workflow"] = "{\"kind\": \"task_id\", \"id\": \"\xff\"}" }},
		{name: "NaN", mutate: func(m map[string]string) { m["extra"] = `, "x": NaN` }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.raw
			if data == nil {
				data = sampleBundle(t, tc.mutate)
			}
			b, err := bundle.Parse(data, bundle.Limits{})
			if err == nil {
				t.Fatalf("accepted (%d steps)", len(b.Steps))
			}
			if !errors.Is(err, bundle.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			var pe *bundle.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("not a *ParseError: %T", err)
			}
			if tc.path != "" && pe.Path != tc.path {
				t.Fatalf("error names %q, want %q: %v", pe.Path, tc.path, err)
			}
		})
	}
}

func TestParseEnvelopeErrorKeepsReason(t *testing.T) {
	data := sampleBundle(t, func(m map[string]string) {
		m["envelope"] = strings.Replace(m["envelope"], `{`, `{"trusted": true, `, 1)
	})
	_, err := bundle.Parse(data, bundle.Limits{})
	if reason.Of(err, "") != reason.MalformedEnvelope {
		t.Fatalf("the envelope's reason code is lost: %v", err)
	}
}

func TestParseLimits(t *testing.T) {
	data := sampleBundle(t, nil)
	cases := []struct {
		name string
		lim  bundle.Limits
		data []byte
	}{
		{"bytes", bundle.Limits{MaxBytes: len(data) - 1}, data},
		{"steps", bundle.Limits{MaxSteps: 1}, bytes.Replace(data, []byte(`"steps": [{`), []byte(`"steps": [{"envelope": {}}, {`), 1)},
		{"envelope depth", bundle.Limits{Envelope: packet.Limits{MaxDepth: 2}}, data},
		{"nesting", bundle.Limits{}, []byte(`{"version": "trusthandoff/bundle/v1", "x": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := bundle.Parse(tc.data, tc.lim); !errors.Is(err, bundle.ErrMalformed) {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
	if _, err := bundle.Parse(data, bundle.Limits{MaxBytes: len(data)}); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
}
