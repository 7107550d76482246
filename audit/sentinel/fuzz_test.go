package sentinel

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trusthandoff/trusthandoff-go/audit"
)

// pageTags are the only elements the HTML template writes.
var pageTags = map[string]bool{"a": true, "body": true, "br": true, "h1": true, "h2": true, "head": true,
	"html": true, "i": true, "meta": true, "noscript": true, "p": true, "script": true, "span": true,
	"style": true, "svg": true, "table": true, "td": true, "th": true, "title": true, "tr": true}

var tagRE = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)`)

// FuzzAnalyze feeds arbitrary JSONL records (as a hostile or foreign writer could leave
// in a log that still chains) to Analyze and every renderer: nothing panics, every
// finding cites records that exist, and the HTML page holds only the template's own
// elements (every value from the log escaped).
func FuzzAnalyze(f *testing.F) {
	for _, r := range sampleRecords() {
		line, _ := json.Marshal(r)
		f.Add(string(line)+"\n", uint8(2), uint8(3))
	}
	f.Add(`{"seq":1,"event_type":"packet_rejected","timestamp":"2026-01-01T00:00:00Z","payload":{"reason":"invalid_signature","from_agent":"<x>","chain_depth":1e308,"approvals":[{"approval_id":"a"},{"approval_id":"a"}],"flags":[1,"token_overlap_used"]}}
{"seq":2,"event_type":"replay_detected","payload":{"reason":"replay_detected","issued_at":"9999-12-31T23:59:59Z","expires_at":"0001-01-01T00:00:00Z"}}
{"seq":2,"event_type":"x","payload":null}
{"seq":3,"event_type":"packet_accepted","payload":{"decision":"ACCEPT","dry_run":true,"from_agent":"a","to_agent":"a","packet_digest":{"a":[]}}}
`, uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, jsonl string, burst, depth uint8) {
		var recs []audit.Record
		for line := range strings.Lines(jsonl) {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) == nil {
				recs = append(recs, r)
			}
		}
		rep := Analyze(recs, WithBurst(time.Duration(burst)*time.Second, int(burst%5)), WithDepthLimit(int64(depth%8)),
			WithMaxHTMLTimeline(int(burst)+1))
		seqs := map[uint64]bool{}
		for _, r := range recs {
			seqs[r.Seq] = true
		}
		for _, fd := range rep.Findings {
			if len(fd.Seqs) == 0 || len(fd.Seqs) != len(fd.EventIDs) {
				t.Fatalf("finding %+v", fd)
			}
			for _, s := range fd.Seqs {
				if !seqs[s] {
					t.Fatalf("finding %+v cites seq %d, not in the records", fd, s)
				}
			}
		}
		var text, js, page bytes.Buffer
		if err := rep.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(js.Bytes()) {
			t.Fatal("WriteJSON wrote invalid JSON")
		}
		if err := rep.WriteHTML(&page); err != nil {
			t.Fatal(err)
		}
		for _, m := range tagRE.FindAllStringSubmatch(page.String(), -1) {
			if !pageTags[m[1]] {
				t.Fatalf("the page holds a <%s> element from the log", m[1])
			}
		}
		if n := strings.Count(page.String(), "<script"); n != 2 {
			t.Fatalf("the page holds %d script elements", n)
		}
		if n := strings.Count(page.String(), "data-timeline-entry="); n != min(len(rep.Timeline), int(burst)+1) {
			t.Fatalf("%d timeline rows drawn of %d", n, len(rep.Timeline))
		}
	})
}
