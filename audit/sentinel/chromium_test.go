package sentinel

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chromium returns the headless browser, or skips (fails under TRUSTHANDOFF_REQUIRE_CHROMIUM=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TRUSTHANDOFF_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed and TRUSTHANDOFF_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed")
	return ""
}

// trap is a loopback listener that counts every connection: the browser's proxy, so any
// request the page makes, to any host, arrives here.
type trap struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex
	reqs  []string // the request lines
}

// pageRequests returns the request lines, less the browser's own background traffic
// (component updates, time and account services on Google's hosts, which
// --disable-background-networking does not stop entirely): a page request names the
// page's own URLs, and the report has none.
func (tr *trap) pageRequests() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, r := range tr.reqs {
		if !browserTraffic.MatchString(r) {
			out = append(out, r)
		}
	}
	return out
}

var browserTraffic = regexp.MustCompile(`^(CONNECT |[A-Z]+ https?://)[a-z0-9.-]*\.(google\.com|googleapis\.com|gvt1\.com)[:/ ]`)

func newTrap(t *testing.T) *trap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.conns.Add(1)
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				tr.mu.Lock()
				tr.reqs = append(tr.reqs, strings.TrimSpace(line))
				tr.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return tr
}

// dumpDOM loads file in headless chromium, every request sent to the trap, and returns
// the DOM after the page's scripts ran.
func dumpDOM(t *testing.T, browser, file string, tr *trap) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-default-apps", "--disable-extensions",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		"--proxy-server=http://"+tr.ln.Addr().String(), "--proxy-bypass-list=<-loopback>",
		"--virtual-time-budget=2000", "--dump-dom", "file://"+file)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

var (
	nodeRE  = regexp.MustCompile(`<g data-node="agent"`)
	edgeRE  = regexp.MustCompile(`<g data-edge="[a-z_]+"`)
	entryRE = regexp.MustCompile(`<tr id="seq-\d+" data-timeline-entry="\d+"`)
)

// Rule: in a real browser, the page's script draws one element per node and edge of the
// report, the timeline has one row per record, hostile ids stay text, and the page
// requests nothing from the network.
func TestHTMLInChromium(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	rep := Analyze(sampleRecords())
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The trap works: a page that loads an image from the network reaches it.
	tr := newTrap(t)
	probe := filepath.Join(dir, "probe.html")
	os.WriteFile(probe, []byte(`<!DOCTYPE html><img src="http://sentinel-probe.test/x.png">`), 0o644)
	dumpDOM(t, browser, probe, tr)
	if !slices.ContainsFunc(tr.pageRequests(), func(r string) bool { return strings.Contains(r, "sentinel-probe.test") }) {
		t.Fatal("the probe page's request did not reach the trap: the network check would prove nothing")
	}

	tr = newTrap(t)
	dom := dumpDOM(t, browser, page, tr)
	if reqs := tr.pageRequests(); len(reqs) != 0 {
		t.Errorf("the report made %d network requests: %q", len(reqs), reqs)
	}
	if got := len(nodeRE.FindAllString(dom, -1)); got != rep.Counts.Nodes || got == 0 {
		t.Errorf("%d nodes drawn, report has %d", got, rep.Counts.Nodes)
	}
	if got := len(edgeRE.FindAllString(dom, -1)); got != rep.Counts.Edges || got == 0 {
		t.Errorf("%d edges drawn, report has %d", got, rep.Counts.Edges)
	}
	if got := len(entryRE.FindAllString(dom, -1)); got != len(rep.Timeline) {
		t.Errorf("%d timeline entries, report has %d", got, len(rep.Timeline))
	}
	if !strings.Contains(dom, `data-drawn="`+strconv.Itoa(rep.Counts.Nodes+rep.Counts.Edges)+`"`) {
		t.Error("the graph script did not finish")
	}
	if !strings.Contains(dom, `data-csp-violations="0"`) {
		t.Error("the page broke its Content-Security-Policy")
	}
	if n := strings.Count(dom, "<script"); n != 2 {
		t.Errorf("%d script elements after load, want the page's own 2", n)
	}
	if strings.Contains(dom, "<img") || !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a hostile id was not rendered as text")
	}
}
