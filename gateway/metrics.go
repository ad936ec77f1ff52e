package gateway

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests      *prometheus.CounterVec   // route, class
	duration      *prometheus.HistogramVec // route
	authFailures  *prometheus.CounterVec   // reason
	sigFailures   *prometheus.CounterVec   // reason
	auditErrors   prometheus.Counter
	auditCounted  *prometheus.CounterVec // kind
	throttled     prometheus.Counter
	usageErrors   prometheus.Counter
	redisCommands *prometheus.CounterVec // outcome
	sseClients    prometheus.Gauge
	sseRefused    *prometheus.CounterVec // cap
	sseLeft       prometheus.Counter
	tokenEvents   *prometheus.CounterVec // event
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_requests_total",
			Help: "HTTP requests by route pattern (\"unmatched\" for none) and status class (2xx, 4xx, ...).",
		}, []string{"route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tickstash_gateway_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern (SSE streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_auth_failures_total",
			Help: "Requests refused by authentication or authorization, by reason (missing, malformed, unknown, expired, revoked, scope, signature, secret_key, redis_command, redis_key).",
		}, []string{"reason"}),
		sigFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_signature_failures_total",
			Help: "Signed requests refused, by reason (missing, malformed, stale, mismatch, replay).",
		}, []string{"reason"}),
		auditErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_gateway_audit_write_errors_total",
			Help: "Audit entries that could not be appended to the audit stream.",
		}),
		auditCounted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_audit_refusals_counted_total",
			Help: "Refused requests counted per minute in the audit record instead of recorded one by one, by kind (anonymous: without a valid token; token: a valid token beyond its allowance).",
		}, []string{"kind"}),
		throttled: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_gateway_clients_throttled_total",
			Help: "Requests without a token answered 429 because their client address exhausted its allowance of refusals.",
		}),
		usageErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_gateway_usage_flush_errors_total",
			Help: "Usage-metering flushes to Redis that failed (their counts are retried on the next flush).",
		}),
		redisCommands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_redis_commands_total",
			Help: "Commands received on the Redis REST endpoint, by outcome (ok, error, refused).",
		}, []string{"outcome"}),
		sseClients: f.NewGauge(prometheus.GaugeOpts{
			Name: "tickstash_gateway_sse_clients",
			Help: "Open Server-Sent Events streams of signals.",
		}),
		sseRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_sse_refused_total",
			Help: "Signal streams refused with 429 by a cap, by cap (token: the token's own, total: the server's).",
		}, []string{"cap"}),
		tokenEvents: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_gateway_token_events_total",
			Help: "Token changes received over NATS, by event (revoked, rotated, other, malformed); each drops the token from the cache.",
		}, []string{"event"}),
		sseLeft: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_gateway_sse_consumers_left_total",
			Help: "Signal streams whose JetStream consumer could not be deleted when they ended (the server drops it after its inactivity threshold).",
		}),
	}
}

// routeMetrics caches one route's series, so that a request costs no label lookup.
type routeMetrics struct {
	byClass [6]atomic.Pointer[prometheus.Counter] // status class 1xx..5xx; 0 for others
	dur     atomic.Pointer[prometheus.Observer]
}

var classLabels = [6]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (rm *routeMetrics) requests(m *metrics, route string, status int) prometheus.Counter {
	class := status / 100
	if class < 1 || class > 5 {
		return m.requests.WithLabelValues(route, strconv.Itoa(class)+"xx")
	}
	if c := rm.byClass[class].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(route, classLabels[class])
	rm.byClass[class].Store(&c)
	return c
}

func (rm *routeMetrics) observer(m *metrics, route string) prometheus.Observer {
	if o := rm.dur.Load(); o != nil {
		return *o
	}
	o := m.duration.WithLabelValues(route)
	rm.dur.Store(&o)
	return o
}
