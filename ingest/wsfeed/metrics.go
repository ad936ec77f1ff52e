package wsfeed

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// Metrics are the per-exchange feed metrics. Several feeds may share a registry: the
// vectors are registered once and each feed uses its exchange's children.
type Metrics struct {
	exchange     string
	Messages     prometheus.Counter
	decodeErrors *prometheus.CounterVec
	Reconnects   prometheus.Counter
	Gaps         prometheus.Counter
	Duplicates   prometheus.Counter
	Lag          prometheus.Observer
	LastMessage  prometheus.Gauge
	invalid      *prometheus.CounterVec
}

// NewMetrics registers (or reuses, when another feed registered them first) the feed
// metrics on reg and returns the children for exchange ex. A nil reg registers nothing.
//
// Metrics: tickstash_feed_messages_total, tickstash_feed_decode_errors_total{reason},
// tickstash_feed_reconnects_total, tickstash_feed_gaps_total,
// tickstash_feed_duplicates_total, tickstash_feed_lag_seconds (exchange time to
// receive time) and tickstash_feed_last_message_timestamp_seconds, all labelled by
// exchange.
func NewMetrics(reg prometheus.Registerer, ex market.Exchange) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	e := string(ex)
	labels := []string{"exchange"}
	messages := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_feed_messages_total",
		Help: "Websocket messages received from an exchange feed (or read from a capture).",
	}, labels))
	decodeErrors := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_feed_decode_errors_total",
		Help: "Feed messages skipped because they did not decode, by reason.",
	}, []string{"exchange", "reason"}))
	reconnects := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_feed_reconnects_total",
		Help: "Feed connections lost or closed and dialled again.",
	}, labels))
	gaps := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_feed_gaps_total",
		Help: "Jumps in an exchange's trade ids: trades that were missed.",
	}, labels))
	dups := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_feed_duplicates_total",
		Help: "Trades dropped because their id was already seen (reconnect overlap).",
	}, labels))
	lag := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tickstash_feed_lag_seconds",
		Help:    "Time from the exchange's event time to when tickstash received it.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, labels))
	last := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tickstash_feed_last_message_timestamp_seconds",
		Help: "Unix time of the last message received from an exchange feed.",
	}, labels))
	return &Metrics{
		exchange:     e,
		Messages:     messages.WithLabelValues(e),
		decodeErrors: decodeErrors,
		Reconnects:   reconnects.WithLabelValues(e),
		Gaps:         gaps.WithLabelValues(e),
		Duplicates:   dups.WithLabelValues(e),
		Lag:          lag.WithLabelValues(e),
		LastMessage:  last.WithLabelValues(e),
		invalid:      ingest.InvalidEvents(reg),
	}
}

// Invalid counts one decoded event of kind k dropped because it did not validate, in
// tickstash_ingest_invalid_events_total (the reason "invalid" of the decode errors is
// counted by the caller, per message).
func (m *Metrics) Invalid(k ingest.EventKind) {
	m.invalid.WithLabelValues(k.String()).Inc()
}

// DecodeError counts one message skipped for reason.
func (m *Metrics) DecodeError(reason string) {
	m.decodeErrors.WithLabelValues(m.exchange, reason).Inc()
}

// register registers c, or returns the collector of the same name already registered.
// promauto.With(reg) would panic in the second case, which is the normal one when
// several feeds share cmd's registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: the same name with another shape
	}
	return c
}
