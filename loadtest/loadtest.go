// Package loadtest drives an HTTP endpoint on the loopback interface with many concurrent
// connections for a bounded time and a bounded number of requests, and summarises what
// came back: requests per second, latency quantiles, status codes and, for verification
// endpoints, the decisions and reason codes in the JSON answers.
//
// It also holds what a fair measurement of the verification sidecar needs: Envelopes
// signs a set of handoffs with distinct nonces (so every ACCEPT is a real one, not a
// replay), and Baseline is the bare net/http server the sidecar is compared with.
//
// Targets must be loopback addresses (127.0.0.0/8, ::1 or localhost): the tool is for
// measuring a local service, never for sending load across a network. Every connection it
// opens is checked again at dial time.
package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on a run, whatever the configuration asks for.
const (
	MaxDuration    = 10 * time.Minute
	MaxConnections = 4096
	MaxRequests    = 50_000_000
	maxAnswer      = 64 << 10 // bytes of an answer read for its decision; the rest is discarded
	maxErrSamples  = 5
)

// Defaults for the zero values of Config.
const (
	DefaultDuration    = 10 * time.Second
	DefaultConnections = 32
	DefaultTimeout     = 10 * time.Second
)

var (
	// ErrConfig is wrapped by every *ConfigError.
	ErrConfig = errors.New("loadtest: invalid configuration")
	// ErrNotLoopback means the target is not on the loopback interface.
	ErrNotLoopback = errors.New("loadtest: target is not a loopback address")
	// ErrUnavailable means no request of the run received an answer.
	ErrUnavailable = errors.New("loadtest: target unavailable")
)

// ConfigError names the Config field that is wrong.
type ConfigError struct {
	Field string
	Err   error // ErrNotLoopback for a non-loopback target, else nil
	Msg   string
}

func (e *ConfigError) Error() string { return "loadtest: " + e.Field + ": " + e.Msg }

// Unwrap returns ErrConfig and, for a non-loopback target, ErrNotLoopback.
func (e *ConfigError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrConfig, e.Err}
	}
	return []error{ErrConfig}
}

// Config describes one run.
type Config struct {
	// Target is the URL requested (http or https; the host must be loopback).
	Target string
	// Method defaults to POST when there are bodies and GET otherwise.
	Method string
	// Bodies are the request bodies, taken in order. Without Reuse each is sent once and
	// the run ends when they are all sent; with Reuse they are cycled.
	Bodies [][]byte
	Reuse  bool
	// ContentType defaults to application/json when there are bodies.
	ContentType string
	// Token, when set, is sent as "Authorization: Bearer TOKEN". It never appears in
	// results or errors.
	Token string

	Duration    time.Duration // default DefaultDuration, at most MaxDuration
	Connections int           // default DefaultConnections, at most MaxConnections
	// MaxRequests bounds the requests started (default and ceiling MaxRequests; without
	// Reuse also len(Bodies)).
	MaxRequests int
	Timeout     time.Duration // per request, default DefaultTimeout

	// TLS configures https targets (nil: the system roots).
	TLS *tls.Config

	// Progress, when set, is called about every ProgressInterval (default 1 s) from one
	// goroutine while the run lasts.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a running count handed to Config.Progress.
type Progress struct {
	Elapsed  time.Duration
	Requests uint64 // answered so far
	Errors   uint64
}

// Result summarises a run. Latencies are of answered requests, from sending the request
// to reading the whole answer, in milliseconds.
type Result struct {
	Target            string            `json:"target"`
	Connections       int               `json:"connections"`
	DurationSeconds   float64           `json:"duration_seconds"`
	Requests          uint64            `json:"requests"`
	Errors            uint64            `json:"errors"`
	RequestsPerSecond float64           `json:"requests_per_second"`
	Latency           Latency           `json:"latency_ms"`
	Status            map[string]uint64 `json:"status"`
	Decisions         map[string]uint64 `json:"decisions,omitempty"`
	Reasons           map[string]uint64 `json:"reasons,omitempty"`
	ErrorCodes        map[string]uint64 `json:"error_codes,omitempty"`
	// BodiesExhausted reports that the run ended because every body was sent.
	BodiesExhausted bool `json:"bodies_exhausted"`
	// ErrorSamples holds a few distinct transport errors.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// Latency holds quantiles in milliseconds (within 1.6 % of the exact values).
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// CheckLoopback reports whether target is an http(s) URL whose host is a loopback IP
// address or "localhost"; the error is a *ConfigError.
func CheckLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return &ConfigError{Field: "Target", Msg: "not a URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &ConfigError{Field: "Target", Msg: fmt.Sprintf("scheme %q (want http or https)", u.Scheme)}
	}
	if u.User != nil {
		return &ConfigError{Field: "Target", Msg: "credentials in the URL are not accepted (use a token)"}
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return &ConfigError{Field: "Target", Err: ErrNotLoopback, Msg: fmt.Sprintf("host %q is not a loopback address", host)}
}

type normalized struct {
	Config
	maxReq uint64
}

func (c Config) normalize() (*normalized, error) {
	if err := CheckLoopback(c.Target); err != nil {
		return nil, err
	}
	n := &normalized{Config: c}
	if n.Method == "" {
		n.Method = http.MethodGet
		if len(n.Bodies) > 0 {
			n.Method = http.MethodPost
		}
	}
	if n.ContentType == "" && len(n.Bodies) > 0 {
		n.ContentType = "application/json"
	}
	switch {
	case n.Duration == 0:
		n.Duration = DefaultDuration
	case n.Duration < 0 || n.Duration > MaxDuration:
		return nil, &ConfigError{Field: "Duration", Msg: fmt.Sprintf("%v is outside (0, %v]", n.Duration, MaxDuration)}
	}
	switch {
	case n.Connections == 0:
		n.Connections = DefaultConnections
	case n.Connections < 0 || n.Connections > MaxConnections:
		return nil, &ConfigError{Field: "Connections", Msg: fmt.Sprintf("%d is outside [1, %d]", n.Connections, MaxConnections)}
	}
	switch {
	case n.Timeout == 0:
		n.Timeout = DefaultTimeout
	case n.Timeout < 0:
		return nil, &ConfigError{Field: "Timeout", Msg: "negative"}
	}
	if n.MaxRequests < 0 {
		return nil, &ConfigError{Field: "MaxRequests", Msg: "negative"}
	}
	maxReq := MaxRequests
	if n.MaxRequests > 0 {
		maxReq = min(maxReq, n.MaxRequests)
	}
	if len(n.Bodies) > 0 && !n.Reuse {
		maxReq = min(maxReq, len(n.Bodies))
	}
	n.maxReq = uint64(maxReq)
	if n.ProgressInterval <= 0 {
		n.ProgressInterval = time.Second
	}
	return n, nil
}

// loopbackDialer refuses connections whose peer is not a loopback address, whatever name
// resolution said.
func loopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			conn.Close()
			return nil, fmt.Errorf("%w: connected to %v", ErrNotLoopback, conn.RemoteAddr())
		}
		return conn, nil
	}
}

// stats is one worker's share of the result.
type stats struct {
	hist       histogram
	status     map[int]uint64
	decisions  map[string]uint64
	reasons    map[string]uint64
	errorCodes map[string]uint64
	errors     uint64
	errs       []string // distinct samples
}

// answer is what the tool reads from a JSON answer: a verify decision or an API error.
type answer struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Error    *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// parseAnswer extracts the decision, reason and error code of a JSON answer; anything
// that is not a JSON object yields empty strings.
func parseAnswer(body []byte) (decision, reasonCode, errCode string) {
	var a answer
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &a) != nil {
		return "", "", ""
	}
	if a.Error != nil {
		errCode = a.Error.Code
	}
	return a.Decision, a.Reason, errCode
}

// Run performs the run described by cfg and returns its summary. It returns early when
// ctx is done. The error wraps ErrConfig for a bad configuration and ErrUnavailable when
// not a single request was answered; the Result is returned with ErrUnavailable too.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext:           loopbackDialer(),
		MaxIdleConns:          c.Connections,
		MaxIdleConnsPerHost:   c.Connections,
		MaxConnsPerHost:       c.Connections,
		DisableCompression:    true,
		TLSClientConfig:       c.TLS,
		ResponseHeaderTimeout: c.Timeout,
		Proxy:                 nil, // never through a proxy: the target is local
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		Timeout:   c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect could point off the loopback
		},
	}
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	var (
		next, answered, failed atomic.Uint64
		exhausted              atomic.Bool
		wg                     sync.WaitGroup
	)
	workers := make([]*stats, c.Connections)
	start := time.Now()
	for w := range workers {
		s := &stats{status: map[int]uint64{}, decisions: map[string]uint64{}, reasons: map[string]uint64{}, errorCodes: map[string]uint64{}}
		workers[w] = s
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= c.maxReq {
					exhausted.Store(true)
					return
				}
				var body io.Reader
				if len(c.Bodies) > 0 {
					body = bytes.NewReader(c.Bodies[i%uint64(len(c.Bodies))])
				}
				req, err := http.NewRequestWithContext(ctx, c.Method, c.Target, body)
				if err != nil {
					// the URL parsed in CheckLoopback, so only the context can fail here
					return
				}
				if c.ContentType != "" {
					req.Header.Set("Content-Type", c.ContentType)
				}
				if c.Token != "" {
					req.Header.Set("Authorization", "Bearer "+c.Token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					buf, err = readAnswer(buf[:0], resp.Body)
				}
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the run: neither answered nor failed
					}
					failed.Add(1)
					s.errors++
					s.noteError(err)
					continue
				}
				answered.Add(1)
				s.hist.record(d)
				s.status[resp.StatusCode]++
				dec, rc, ec := parseAnswer(buf)
				if dec != "" {
					s.decisions[dec]++
				}
				if rc != "" {
					s.reasons[rc]++
				}
				if ec != "" {
					s.errorCodes[ec]++
				}
			}
		})
	}
	done := make(chan struct{})
	if c.Progress != nil {
		go func() {
			t := time.NewTicker(c.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					c.Progress(Progress{Elapsed: time.Since(start), Requests: answered.Load(), Errors: failed.Load()})
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)

	res := summarize(c, workers, elapsed, exhausted.Load())
	if res.Requests == 0 {
		return res, fmt.Errorf("%w: no request to %s was answered (%d errors)", ErrUnavailable, c.Target, res.Errors)
	}
	return res, nil
}

// readAnswer reads up to maxAnswer bytes of an answer into dst, discards the rest and
// closes it (so the connection is reused).
func readAnswer(dst []byte, body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	w := bytes.NewBuffer(dst)
	if _, err := w.ReadFrom(io.LimitReader(body, maxAnswer)); err != nil {
		return w.Bytes(), err
	}
	_, err := io.Copy(io.Discard, body)
	return w.Bytes(), err
}

func (s *stats) noteError(err error) {
	if len(s.errs) >= maxErrSamples {
		return
	}
	msg := err.Error()
	if !slices.Contains(s.errs, msg) {
		s.errs = append(s.errs, msg)
	}
}

func summarize(c *normalized, workers []*stats, elapsed time.Duration, exhausted bool) *Result {
	var h histogram
	res := &Result{
		Target:          c.Target,
		Connections:     c.Connections,
		DurationSeconds: elapsed.Seconds(),
		Status:          map[string]uint64{},
		Decisions:       map[string]uint64{},
		Reasons:         map[string]uint64{},
		ErrorCodes:      map[string]uint64{},
		BodiesExhausted: exhausted,
	}
	for _, s := range workers {
		h.merge(&s.hist)
		res.Errors += s.errors
		for k, v := range s.status {
			res.Status[strconv.Itoa(k)] += v
		}
		for k, v := range s.decisions {
			res.Decisions[k] += v
		}
		for k, v := range s.reasons {
			res.Reasons[k] += v
		}
		for k, v := range s.errorCodes {
			res.ErrorCodes[k] += v
		}
		for _, e := range s.errs {
			if len(res.ErrorSamples) < maxErrSamples && !slices.Contains(res.ErrorSamples, e) {
				res.ErrorSamples = append(res.ErrorSamples, e)
			}
		}
	}
	res.Requests = h.n
	if elapsed > 0 {
		res.RequestsPerSecond = float64(res.Requests) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.Latency = Latency{
		Mean: ms(h.mean()), P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.max),
	}
	return res
}
