package loadtest

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// FuzzParseAnswer: any answer body yields strings, never a panic.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"decision":"ACCEPT","reason":"ok"}`, `{"error":{"code":"x"}}`, `{`, `[]`, `{"error":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parseAnswer(body)
	})
}

// FuzzBaseline: the baseline answers every body with 200, 400 or 413, never a panic, and
// accepts nothing it cannot verify (no key is registered).
func FuzzBaseline(f *testing.F) {
	a := newAgents(f)
	good, err := Envelopes(a.alice, a.bobID, "x", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[0])
	f.Add([]byte(`{"packet":{}}`))
	stranger := newAgents(f) // a registry that knows neither alice nor bob
	b := NewBaseline(stranger.reg)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, req)
		if d, _, _ := parseAnswer(rec.Body.Bytes()); d == "ACCEPT" {
			t.Fatalf("accepted an envelope from an unregistered sender: %q", body)
		}
		if c := rec.Code; c != 200 && c != 400 && c != 413 {
			t.Fatalf("status %d", c)
		}
	})
}
