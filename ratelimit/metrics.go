package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Decision results, the values of the result label.
const (
	resultAllowed    = "allowed"
	resultDenied     = "denied"
	resultFailOpen   = "fail_open"
	resultFailClosed = "fail_closed"
)

type metrics struct {
	decisions *prometheus.CounterVec
	duration  prometheus.Histogram
	cacheHits prometheus.Counter
	leased    prometheus.Counter
	failOpens prometheus.Counter
	perPolicy map[string]map[string]prometheus.Counter // policy -> result -> counter
}

// newMetrics registers the limiter's metrics with reg; nil reg registers nothing. The
// limiter const label keeps two limiters in one registry apart.
func newMetrics(reg prometheus.Registerer, limiter string, policies []Policy) *metrics {
	f := promauto.With(reg)
	labels := prometheus.Labels{"limiter": limiter}
	m := &metrics{
		decisions: f.NewCounterVec(prometheus.CounterOpts{
			Name:        "tickstash_ratelimit_decisions_total",
			Help:        "Rate-limit decisions by policy and result (allowed, denied, fail_open, fail_closed).",
			ConstLabels: labels,
		}, []string{"policy", "result"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:        "tickstash_ratelimit_script_duration_seconds",
			Help:        "Latency of one rate-limit script call to Redis, errors included.",
			ConstLabels: labels,
			Buckets:     []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		cacheHits: f.NewCounter(prometheus.CounterOpts{
			Name:        "tickstash_ratelimit_local_cache_hits_total",
			Help:        "Checks denied from the local cache of blocked identifiers, without a Redis call.",
			ConstLabels: labels,
		}),
		leased: f.NewCounter(prometheus.CounterOpts{
			Name:        "tickstash_ratelimit_leased_total",
			Help:        "Checks allowed from units leased from Redis earlier (Config.Lease), without a Redis call.",
			ConstLabels: labels,
		}),
		failOpens: f.NewCounter(prometheus.CounterOpts{
			Name:        "tickstash_ratelimit_fail_open_total",
			Help:        "Checks allowed because Redis failed or timed out and the limiter fails open.",
			ConstLabels: labels,
		}),
		perPolicy: make(map[string]map[string]prometheus.Counter, len(policies)),
	}
	// Resolve the label combinations once: WithLabelValues hashes on every call.
	for _, p := range policies {
		byResult := make(map[string]prometheus.Counter, 4)
		for _, r := range []string{resultAllowed, resultDenied, resultFailOpen, resultFailClosed} {
			byResult[r] = m.decisions.WithLabelValues(p.Name, r)
		}
		m.perPolicy[p.Name] = byResult
	}
	return m
}

func (m *metrics) decision(policy, result string) {
	m.perPolicy[policy][result].Inc()
}
