package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/trusthandoff/trusthandoff-go/identity/fastverify"
	"github.com/trusthandoff/trusthandoff-go/loadtest"
	"github.com/trusthandoff/trusthandoff-go/packet"
	"github.com/trusthandoff/trusthandoff-go/server"
)

// discardWriter is the cheapest http.ResponseWriter: the benchmark measures the handler,
// not a recorder.
type discardWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) {
	w.body = append(w.body, b...)
	return len(b), nil
}

// BenchmarkVerifyHandler is one POST /v1/verify through the server's handler, as the
// sidecar serves it (agent token, fresh handoff, precomputed keys, in-memory store): every
// iteration is a real ACCEPT.
func BenchmarkVerifyHandler(b *testing.B) {
	w := newWorld(b, func(c *server.Config) {
		if err := c.Registry.SetVerifierFactory(fastverify.New); err != nil {
			b.Fatal(err)
		}
	})
	reg, tokens := w.cfg.Registry, w.cfg.Tokens
	const n = 1 << 12
	envs, err := loadtest.Envelopes(w.alice.s, w.bob.id, "summarize tickets", n, packet.WithActions("read_tickets"))
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://sidecar/v1/verify")
	body := bytes.NewReader(nil)
	req := &http.Request{
		Method: http.MethodPost, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: "sidecar", RemoteAddr: "127.0.0.1:1234",
		Header: http.Header{
			"Content-Type":  {"application/json"},
			"Authorization": {"Bearer " + w.bob.token},
		},
		Body: io.NopCloser(body),
	}
	rw := &discardWriter{h: http.Header{}}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == n { // every envelope was accepted once: a fresh server accepts them again
			b.StopTimer()
			w = newWorld(b, func(c *server.Config) { c.Registry, c.Tokens = reg, tokens })
			b.StartTimer()
			i = 0
		}
		body.Reset(envs[i])
		req.ContentLength = int64(len(envs[i]))
		clear(rw.h)
		rw.status, rw.body = 0, rw.body[:0]
		w.srv.ServeHTTP(rw, req)
		if rw.status != http.StatusOK || !bytes.HasPrefix(rw.body, []byte(`{"decision":"ACCEPT"`)) {
			b.Fatalf("status %d: %s", rw.status, rw.body)
		}
		i++
	}
}
