package signals

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// publisherMetrics are the Distributor's.
type publisherMetrics struct {
	published  *prometheus.CounterVec
	latency    prometheus.Histogram
	retries    prometheus.Counter
	duplicates prometheus.Counter
	invalid    prometheus.Counter
}

func newPublisherMetrics(reg prometheus.Registerer) *publisherMetrics {
	f := promauto.With(reg)
	return &publisherMetrics{
		published: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_signals_published_total",
			Help: "Signals acknowledged by JetStream, by strategy (duplicates included).",
		}, []string{"strategy"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "tickstash_signals_publish_duration_seconds",
			Help:    "Time from a signal's first publish attempt to its JetStream ack, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 12),
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_publish_retries_total",
			Help: "Publish attempts repeated (same Nats-Msg-Id) after an error or a missing ack.",
		}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_duplicates_suppressed_total",
			Help: "Publishes JetStream acknowledged as duplicates of a stored signal (PubAck.Duplicate).",
		}),
		invalid: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_invalid_total",
			Help: "Signals that failed validation and were dropped unpublished.",
		}),
	}
}

// roleMetrics are the Role's.
type roleMetrics struct {
	generated   *prometheus.CounterVec
	updates     *prometheus.CounterVec
	redelivered prometheus.Counter
	retries     prometheus.Counter
}

func newRoleMetrics(reg prometheus.Registerer) *roleMetrics {
	f := promauto.With(reg)
	return &roleMetrics{
		generated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_signals_generated_total",
			Help: "Signals raised by the rules, by strategy.",
		}, []string{"strategy"}),
		updates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_signals_updates_total",
			Help: "Analysis updates handled, by result: ok, bad (undecodable), no_close, error.",
		}, []string{"result"}),
		redelivered: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_updates_redelivered_total",
			Help: "Analysis updates delivered again because a signals role died or stopped before acknowledging them.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_update_retries_total",
			Help: "Retries of an analysis update whose handling failed (Redis or the signal publish); it is retried in place until it succeeds.",
		}),
	}
}

var descUpdatesPending = prometheus.NewDesc("tickstash_signals_updates_pending",
	"Analysis updates in the stream not yet acknowledged by a signals role: waiting plus in hand (read from JetStream at scrape time). It grows while no signals role runs.",
	nil, nil)

// pendingCollector reads the durable consumer's backlog when Prometheus scrapes.
type pendingCollector struct {
	r            *Role
	scrapeErrors prometheus.Counter
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descUpdatesPending }

// Collect sends the gauge, or nothing and a scrape error when JetStream does not answer.
func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.r.consumer().Info(ctx)
	if err != nil {
		c.scrapeErrors.Inc()
		return
	}
	ch <- prometheus.MustNewConstMetric(descUpdatesPending, prometheus.GaugeValue, float64(info.NumPending)+float64(info.NumAckPending))
}

// subscriberMetrics are the Client's.
type subscriberMetrics struct {
	deliveries  prometheus.Counter
	rateLimited prometheus.Counter
	denied      prometheus.Counter
	invalid     prometheus.Counter
}

func newSubscriberMetrics(reg prometheus.Registerer) *subscriberMetrics {
	f := promauto.With(reg)
	return &subscriberMetrics{
		deliveries: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_subscriber_deliveries_total",
			Help: "Signals handed to subscriber handlers.",
		}),
		rateLimited: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_subscriber_rate_limited_total",
			Help: "Deliveries held back (delayed or dropped) by the per-user rate limit.",
		}),
		denied: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_subscriber_not_entitled_total",
			Help: "Signals not delivered because the user is not entitled to their strategy or symbol.",
		}),
		invalid: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_subscriber_invalid_total",
			Help: "Received messages that were not valid signals, dropped.",
		}),
	}
}
