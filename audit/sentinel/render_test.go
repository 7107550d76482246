package sentinel

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// sampleRecords is a small log with hostile agent ids and a finding of most kinds.
func sampleRecords() []audit.Record {
	var b logb
	b.add(dec{from: "<script>alert(1)</script>", to: "bob", reason: "ok", packet: "p1"})
	b.add(dec{from: "<script>alert(1)</script>", to: "bob", reason: "replay_detected", packet: "p1", extra: []string{audit.ReplayDetected}})
	for i := range 3 {
		b.add(dec{from: "mallory\x1b[31m", to: "bob", reason: "invalid_signature", at: time.Duration(i) * time.Second})
	}
	b.add(dec{from: "bob", to: "carol\"'&", reason: "ok", extra: []string{audit.AIGeneratedPayload}, payload: map[string]any{"flags": []any{"ai_generated_payload"}}})
	b.add(dec{from: "carol\"'&", to: "carol\"'&", reason: "ok", payload: map[string]any{"dry_run": true}})
	b.add(dec{from: "bob", to: "dave", reason: "wrong_recipient", extra: []string{audit.WrongRecipient}, payload: map[string]any{"recipient": "</script><img src=x>"}})
	return b.recs
}

func TestRenderers(t *testing.T) {
	rep := Analyze(sampleRecords())
	var text, js, h bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "\x1b") {
		t.Errorf("text output carries a raw escape character:\n%s", text.String())
	}
	page := h.String()
	for _, bad := range []string{"<script>alert", "<img", "://", "\x1b"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML holds %q", bad)
		}
	}
	if n := strings.Count(page, "data-timeline-entry="); n != len(rep.Timeline) {
		t.Errorf("%d timeline entries drawn, want %d", n, len(rep.Timeline))
	}
	if n := strings.Count(page, "data-finding="); n != len(rep.Findings) {
		t.Errorf("%d findings drawn, want %d", n, len(rep.Findings))
	}
	if os.Getenv("SENTINEL_WRITE") != "" {
		os.WriteFile(os.Getenv("SENTINEL_WRITE"), h.Bytes(), 0o644)
		os.Stdout.Write(text.Bytes())
	}
}

// Rule: the HTML timeline stops at its cap with a note counting the rest; JSON keeps all.
func TestHTMLTimelineCap(t *testing.T) {
	rep := Analyze(sampleRecords(), WithMaxHTMLTimeline(4))
	var h, js bytes.Buffer
	if err := rep.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	rep.WriteJSON(&js)
	if n := strings.Count(h.String(), "data-timeline-entry="); n != 4 {
		t.Errorf("%d timeline rows, want 4", n)
	}
	if want := `data-timeline-hidden="` + strconv.Itoa(len(rep.Timeline)-4) + `"`; !strings.Contains(h.String(), want) {
		t.Errorf("no note %s", want)
	}
	if n := strings.Count(js.String(), `"event_id"`); n != len(rep.Timeline) {
		t.Errorf("JSON timeline holds %d entries, want %d", n, len(rep.Timeline))
	}
}
