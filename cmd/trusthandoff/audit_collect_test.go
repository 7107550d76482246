package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/audit/natsink"
	"github.com/trusthandoff/trusthandoff-go/internal/natstest"
)

// publishEvents publishes n events with ids prefix-1 … prefix-n through a natsink.Sink.
func publishEvents(t *testing.T, url, prefix string, n int) {
	t.Helper()
	nc, err := natsink.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := natsink.EnsureStream(context.Background(), js, natsink.Config{}); err != nil {
		t.Fatal(err)
	}
	sink := natsink.New(js, natsink.Config{})
	for i := 1; i <= n; i++ {
		ev := audit.Event{EventID: fmt.Sprintf("%s-%d", prefix, i), EventType: audit.PacketAccepted, Timestamp: time.Unix(int64(i), 0).UTC()}
		if err := sink.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditCollectOnce(t *testing.T) {
	srv := natstest.Start(t)
	log := filepath.Join(t.TempDir(), "cluster.jsonl")
	publishEvents(t, srv.URL, "a", 40)
	r := mustTH(t, 0, "", "audit", "collect", "--nats", srv.URL, "--out", log, "--once", "--batch", "16")
	if got := r.json(t); got["recorded"] != 40.0 || got["duplicates"] != 0.0 || got["position"] != 40.0 || got["stream"] != natsink.DefaultStream {
		t.Fatalf("first collect: %v", got)
	}
	// Again, with more events (and the position file lost): only the new ones are added.
	publishEvents(t, srv.URL, "b", 10)
	os.Remove(log + natsink.PositionSuffix)
	r = mustTH(t, 0, "", "audit", "collect", "--nats", srv.URL, "--out", log, "--once")
	if got := r.json(t); got["recorded"] != 10.0 || got["duplicates"] != 40.0 {
		t.Fatalf("second collect: %v", got)
	}
	v := mustTH(t, 0, "", "audit", "verify", log).json(t)
	if v["intact"] != true || v["records"] != 50.0 {
		t.Fatalf("audit verify: %v", v)
	}
}

func TestAuditCollectExitCodes(t *testing.T) {
	srv := natstest.Start(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.jsonl")
	os.WriteFile(broken, []byte(`{"seq":9,"prev_hash":""}`+"\n"), 0o600)
	down := natstest.Start(t)
	down.Kill()
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no --nats", []string{"--out", filepath.Join(dir, "x.jsonl")}, exitUsage},
		{"no --out", []string{"--nats", srv.URL}, exitUsage},
		{"out is a directory", []string{"--nats", srv.URL, "--out", dir}, exitUsage},
		{"bad batch", []string{"--nats", srv.URL, "--out", filepath.Join(dir, "y.jsonl"), "--batch", "0"}, exitUsage},
		{"broken log", []string{"--nats", srv.URL, "--out", broken, "--once"}, exitRejected},
		{"nats down", []string{"--nats", down.URL, "--out", filepath.Join(dir, "z.jsonl"), "--once"}, exitUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustTH(t, c.want, "", append([]string{"audit", "collect"}, c.args...)...)
			if !strings.Contains(r.stderr, "trusthandoff: error:") {
				t.Fatalf("no error message: %q", r.stderr)
			}
		})
	}
	if data, _ := os.ReadFile(broken); !bytes.Equal(data, []byte(`{"seq":9,"prev_hash":""}`+"\n")) {
		t.Fatalf("broken log was appended to: %q", data)
	}
}
