package server

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trusthandoff/trusthandoff-go/reason"
	"github.com/trusthandoff/trusthandoff-go/verify"
)

// metrics are the server's Prometheus collectors, in a registry of its own (no global
// state: two servers in one process do not share counters).
type metrics struct {
	reg         *prometheus.Registry
	decisions   *prometheus.CounterVec
	receipts    *prometheus.CounterVec
	latency     prometheus.Histogram
	storeErrors prometheus.Counter
	unrecorded  prometheus.Counter
	propagation prometheus.Histogram
	// accepts is the decisions child of ACCEPT/ok, resolved at the first ACCEPT (not at
	// start: the series appears when it has counted something), so that the hot path
	// skips the label lookup.
	accepts atomic.Pointer[prometheus.Counter]
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trusthandoff_decisions_total",
			Help: "Verification decisions, by decision and reason code.",
		}, []string{"decision", "reason"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trusthandoff_receipt_decisions_total",
			Help: "Receipt verification decisions (POST /v1/receipts/verify), by decision and reason code.",
		}, []string{"decision", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "trusthandoff_verify_duration_seconds",
			Help:    "Time to verify one envelope (POST /v1/verify, excluding any wait for approvals).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trusthandoff_store_errors_total",
			Help: "Requests answered 503 because a store (nonces, revocations, pending, audit) was unavailable.",
		}),
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trusthandoff_audit_unrecorded_total",
			Help: "Rejections answered although the audit sink failed to record them (an acceptance that cannot be recorded is refused instead, and counted in trusthandoff_store_errors_total).",
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "trusthandoff_revocation_propagation_seconds",
			Help:    "Delay between a revocation's time and its arrival on this node's revocation stream.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16),
		}),
	}
	m.reg.MustRegister(m.decisions, m.receipts, m.latency, m.storeErrors, m.unrecorded, m.propagation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(d *verify.Decision, took time.Duration) {
	m.latency.Observe(took.Seconds())
	if d.Decision != verify.Accept || d.Reason != reason.OK {
		m.decisions.WithLabelValues(d.Decision, string(d.Reason)).Inc()
		return
	}
	c := m.accepts.Load()
	if c == nil {
		cc := m.decisions.WithLabelValues(verify.Accept, string(reason.OK))
		c = &cc
		m.accepts.Store(c)
	}
	(*c).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
