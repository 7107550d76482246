package natsink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trusthandoff/trusthandoff-go/audit"
	"github.com/trusthandoff/trusthandoff-go/internal/natstest"
)

// node is one producer: its own connection, JetStream context and sink.
type node struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	sink *Sink
}

func newNode(t *testing.T, url string, cfg Config, opts ...nats.Option) *node {
	t.Helper()
	nc, err := Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &node{nc: nc, js: js, sink: New(js, cfg)}
}

func ensure(t *testing.T, js jetstream.JetStream, cfg Config) {
	t.Helper()
	if _, err := EnsureStream(context.Background(), js, cfg); err != nil {
		t.Fatal(err)
	}
}

func event(producer string, i int) audit.Event {
	return audit.Event{
		EventID:   fmt.Sprintf("%s-%04d", producer, i),
		EventType: audit.PacketAccepted, Timestamp: time.Unix(1_700_000_000+int64(i), 0).UTC(),
		ProducerID: producer, CorrelationID: fmt.Sprintf("pkt-%d", i),
		Payload: map[string]any{"i": i, "big": uint64(1) << 60, "actions": []string{"read"}},
	}
}

// logIDs verifies the log at path and returns its event ids in order.
func logIDs(t *testing.T, path string) []string {
	t.Helper()
	n, _, err := audit.VerifyFile(path)
	if err != nil {
		t.Fatalf("collected log does not verify: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, audit.MaxLineBytes)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.EventID)
	}
	if uint64(len(ids)) != n {
		t.Fatalf("%d lines, %d records", len(ids), n)
	}
	return ids
}

// exactlyOnce fails unless ids hold every id of want once and nothing else.
func exactlyOnce(t *testing.T, ids []string, want map[string]bool) {
	t.Helper()
	count := map[string]int{}
	for _, id := range ids {
		count[id]++
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s recorded %d times", id, n)
		}
		if !want[id] {
			t.Errorf("event %s recorded but never emitted", id)
		}
	}
	for id := range want {
		if count[id] == 0 {
			t.Errorf("event %s lost", id)
		}
	}
}

func collect(t *testing.T, js jetstream.JetStream, path string, cfg CollectorConfig) Stats {
	t.Helper()
	c, err := OpenCollector(context.Background(), js, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.Stats()
}

func TestManyProducersOneLog(t *testing.T) {
	srv := natstest.Start(t)
	cfg := Config{}
	const producers, each = 6, 150
	nodes := make([]*node, producers)
	for i := range nodes {
		nodes[i] = newNode(t, srv.URL, cfg)
	}
	ensure(t, nodes[0].js, cfg)
	want := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p, n := range nodes {
		wg.Go(func() {
			for i := range each {
				ev := event(fmt.Sprintf("node%d", p), i)
				if err := n.sink.Emit(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 { // a retried Emit: JetStream keeps the event once
					if err := n.sink.Emit(context.Background(), ev); err != nil {
						t.Error(err)
						return
					}
				}
				mu.Lock()
				want[ev.EventID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	st := collect(t, nodes[0].js, path, CollectorConfig{Batch: 64})
	ids := logIDs(t, path)
	exactlyOnce(t, ids, want)
	if st.Recorded != producers*each || st.Duplicates != 0 || st.Invalid != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The log holds the events in stream order, each producer's in its own order.
	last := map[string]int{}
	for _, id := range ids {
		prod, num, _ := strings.Cut(id, "-")
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[prod]; ok && i <= prev {
			t.Fatalf("%s after %s-%04d: not in stream order", id, prod, prev)
		}
		last[prod] = i
	}
	// The records are the events as a local file sink would have written them.
	data, _ := os.ReadFile(path)
	first, _, _ := strings.Cut(string(data), "\n")
	if !strings.Contains(first, `"big":1152921504606846976`) {
		t.Fatalf("numbers not kept as written: %s", first)
	}
}

func TestEmitFailsClosedAndRecovers(t *testing.T) {
	srv := natstest.Start(t)
	cfg := Config{AckTimeout: 3 * time.Second}
	disconnected := make(chan struct{}, 1)
	reconnected := make(chan struct{}, 1)
	n := newNode(t, srv.URL, cfg,
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			select {
			case disconnected <- struct{}{}:
			default:
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	ensure(t, n.js, cfg)
	if err := n.sink.Emit(context.Background(), event("n", 1)); err != nil {
		t.Fatal(err)
	}
	if err := n.sink.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with the server up: %v", err)
	}
	srv.Kill()
	<-disconnected
	if err := n.sink.Ready(context.Background()); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Ready with the server down: %v, want ErrUnavailable", err)
	}
	for i := 2; i <= 3; i++ {
		err := n.sink.Emit(context.Background(), event("n", i))
		if !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Emit with the server down: %v, want ErrUnavailable", err)
		}
	}
	srv.Restart()
	<-reconnected
	if err := n.sink.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after the restart: %v", err)
	}
	if err := n.sink.Emit(context.Background(), event("n", 4)); err != nil {
		t.Fatalf("Emit after the restart: %v", err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	collect(t, n.js, path, CollectorConfig{})
	// What failed is not on the record; what succeeded, before and after, is.
	exactlyOnce(t, logIDs(t, path), map[string]bool{"n-0001": true, "n-0004": true})
}

func TestEmitFailsWithoutStream(t *testing.T) {
	srv := natstest.Start(t)
	n := newNode(t, srv.URL, Config{Stream: "NOPE", Subject: "nope.audit", AckTimeout: 2 * time.Second})
	if err := n.sink.Ready(context.Background()); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Ready without the stream: %v, want ErrUnavailable", err)
	}
	err := n.sink.Emit(context.Background(), event("n", 1))
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Emit without a stream: %v, want ErrUnavailable", err)
	}
	// Another stream capturing the subject does not count as an acknowledgement.
	ensure(t, n.js, Config{Stream: "OTHER", Subject: "nope.audit"})
	if err := n.sink.Emit(context.Background(), event("n", 2)); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Emit into another stream: %v, want ErrUnavailable", err)
	}
}

// TestCollectorRestartResumes: a collector stopped and reopened records each event once,
// whatever became of its saved position.
func TestCollectorRestartResumes(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, posPath string)
	}{
		{"position kept", func(*testing.T, string) {}},
		{"position lost", func(t *testing.T, p string) { os.Remove(p) }},
		{"position stale (crash before it was saved)", func(t *testing.T, p string) {
			writePosition(p, DefaultStream, 7)
		}},
		{"position garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("{{{"), 0o600) }},
		{"position of another stream", func(t *testing.T, p string) { writePosition(p, "OTHER", 1<<40) }},
		{"position past the stream's end", func(t *testing.T, p string) { writePosition(p, DefaultStream, 1<<40) }},
	}
	srv := natstest.Start(t)
	n := newNode(t, srv.URL, Config{})
	ensure(t, n.js, Config{})
	emitted := 0
	want := map[string]bool{}
	emit := func(k int) {
		for range k {
			emitted++
			ev := event("n", emitted)
			if err := n.sink.Emit(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			want[ev.EventID] = true
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			emit(20)
			mine := map[string]bool{}
			for id := range want {
				mine[id] = true
			}
			st := collect(t, n.js, path, CollectorConfig{Batch: 8})
			if st.Recorded != uint64(len(mine)) {
				t.Fatalf("first run recorded %d, want %d", st.Recorded, len(mine))
			}
			c.damage(t, path+PositionSuffix)
			emit(15)
			for id := range want {
				mine[id] = true
			}
			collect(t, n.js, path, CollectorConfig{Batch: 8})
			exactlyOnce(t, logIDs(t, path), mine)
		})
	}
}

// TestCollectorRunFollowsServerRestart: a running collector keeps recording across a
// restart of nats-server.
func TestCollectorRunFollowsServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	reconnected := make(chan struct{}, 1)
	n := newNode(t, srv.URL, Config{}, nats.ReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	}))
	ensure(t, n.js, Config{})
	cn, err := Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	cjs, _ := jetstream.New(cn)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	col, err := OpenCollector(context.Background(), cjs, path, CollectorConfig{FetchWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()

	want := map[string]bool{}
	for i := 1; i <= 30; i++ {
		if i == 16 {
			srv.Kill()
			srv.Restart()
			<-reconnected
		}
		ev := event("n", i)
		if err := n.sink.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		want[ev.EventID] = true
	}
	// Wait (bounded) for the collector to catch up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _, err := audit.VerifyFile(path); err == nil && n >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("collector did not catch up after the server restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	exactlyOnce(t, logIDs(t, path), want)
}

// TestCollectorSkipsHostileMessages: whatever is published on the subject, the log stays
// intact and the events around it are recorded.
func TestCollectorSkipsHostileMessages(t *testing.T) {
	srv := natstest.Start(t)
	n := newNode(t, srv.URL, Config{})
	ensure(t, n.js, Config{})
	ctx := context.Background()
	want := map[string]bool{}
	emit := func(i int) {
		ev := event("n", i)
		if err := n.sink.Emit(ctx, ev); err != nil {
			t.Fatal(err)
		}
		want[ev.EventID] = true
	}
	emit(1)
	hostile := []string{"", "null", "{", "[]", `{"event_id":"x","seq":5}`, `{"event_id":"x"} {}`, `{"timestamp":"yesterday"}`, "\xff\xfe"}
	for _, h := range hostile {
		if _, err := n.js.Publish(ctx, DefaultSubject, []byte(h)); err != nil {
			t.Fatal(err)
		}
	}
	// An event id no header can carry, and an oversized one, each recorded once.
	for _, id := range []string{"evil\r\nNats-Msg-Id: n-0001", strings.Repeat("z", 5000)} {
		ev := event("n", 2)
		ev.EventID = id
		for range 2 {
			if err := n.sink.Emit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		want[audit.Bound(ev).EventID] = true
	}
	emit(3)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	st := collect(t, n.js, path, CollectorConfig{})
	exactlyOnce(t, logIDs(t, path), want)
	if st.Invalid != uint64(len(hostile)) {
		t.Fatalf("invalid %d, want %d (%+v)", st.Invalid, len(hostile), st)
	}
}

func TestOpenCollectorRefusesBrokenLog(t *testing.T) {
	srv := natstest.Start(t)
	n := newNode(t, srv.URL, Config{})
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(path, []byte(`{"seq":2,"prev_hash":""}`+"\n"), 0o600)
	if _, err := OpenCollector(context.Background(), n.js, path, CollectorConfig{}); !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("broken log: %v, want ErrBroken", err)
	}
}

func TestDecodeEvent(t *testing.T) {
	good, _ := audit.MarshalLine(event("n", 1))
	cases := []struct {
		name string
		data string
		ok   bool
	}{
		{"sink output", string(good[:len(good)-1]), true},
		{"with newline", string(good), true},
		{"minimal", `{"event_id":"e"}`, true},
		{"empty", "", false},
		{"null", "null", false},
		{"array", "[]", false},
		{"unknown field", `{"event_id":"e","seq":1}`, false},
		{"trailing data", `{"event_id":"e"}{}`, false},
		{"bad timestamp", `{"timestamp":"now"}`, false},
		{"payload not an object", `{"payload":[1]}`, false},
		{"too long", `{"event_id":"` + strings.Repeat("a", audit.MaxLineBytes) + `"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := DecodeEvent([]byte(c.data))
			if c.ok != (err == nil) {
				t.Fatalf("DecodeEvent(%.40q) = %+v, %v", c.data, ev, err)
			}
			if err != nil && !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
		})
	}
	// Round trip: decoding the sink's message and bounding again gives the same line.
	ev, err := DecodeEvent(good)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := audit.MarshalLine(ev)
	if string(again) != string(good) {
		t.Fatalf("round trip:\n%s\n%s", good, again)
	}
}

func TestMsgID(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		id, want string
	}{
		{"", ""},
		{"0193-abc", "0193-abc"},
		{"has space", "sha256:"},
		{"crlf\r\nX: y", "sha256:"},
		{"é", "sha256:"},
		{long, "sha256:"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%.20q", c.id), func(t *testing.T) {
			got := MsgID(c.id)
			if c.want == "sha256:" {
				if !strings.HasPrefix(got, "sha256:") || len(got) != 7+64 {
					t.Fatalf("MsgID = %q, want a sha256 form", got)
				}
				return
			}
			if got != c.want {
				t.Fatalf("MsgID = %q, want %q", got, c.want)
			}
		})
	}
	// The id of an event and of its record (bounded) give one message id.
	if bounded := audit.Bound(audit.Event{EventID: long}).EventID; MsgID(bounded) != MsgID(long) {
		t.Fatal("MsgID differs for an event id and its bounded form")
	}
}
