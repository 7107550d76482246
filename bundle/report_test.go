package bundle_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode"

	"github.com/trusthandoff/trusthandoff-go/bundle"
)

// TestReportsAreInert: whatever a bundle's author wrote, the text report holds no control
// character but its newlines (no terminal escapes) and the HTML report no markup of theirs.
func TestReportsAreInert(t *testing.T) {
	w := newWorkflow(t)
	b := w.bundle(t)
	hostile := "wf-1\x1b[2J\x1b]0;owned\x07<script>alert(1)</script>\r\u202e"
	b.Workflow.ID = hostile
	rep, err := w.verify(t, b)
	if err == nil || rep.OK {
		t.Fatal("a bundle of another workflow verifies")
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "NOT VERIFIED") || !strings.Contains(text.String(), "workflow_mismatch") {
		t.Fatalf("text report:\n%s", text.String())
	}
	for _, r := range text.String() {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			t.Fatalf("text report holds control character %U:\n%q", r, text.String())
		}
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<script") || strings.ContainsAny(page.String(), "\x1b\x07\r\u202e") {
		t.Fatalf("HTML report carries the bundle's markup:\n%s", page.String())
	}
	// The malformed report is inert too.
	text.Reset()
	_, perr := bundle.Parse([]byte("{\"version\": \"\x1b[2J\"}"), bundle.Limits{})
	bundle.MalformedReport(perr).WriteText(&text)
	if strings.ContainsRune(text.String(), 0x1b) {
		t.Fatalf("malformed report: %q", text.String())
	}
}
