package analysis

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// queueMetrics are the queue's counters, shared by the Queue and its Workers.
type queueMetrics struct {
	enqueued  prometheus.Counter
	coalesced prometheus.Counter
	rejected  prometheus.Counter
	retries   prometheus.Counter
	reclaimed prometheus.Counter
	dead      prometheus.Counter
	trimmed   prometheus.Counter
}

func newQueueMetrics(q *Queue, reg prometheus.Registerer) *queueMetrics {
	f := promauto.With(reg)
	m := &queueMetrics{
		enqueued: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_enqueued_total",
			Help: "Analysis jobs added to the queue (requests coalesced into an existing job not included).",
		}),
		coalesced: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_coalesced_total",
			Help: "Requests folded into a job already waiting (watermark raised) or running (rerun once).",
		}),
		rejected: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_rejected_total",
			Help: "Requests refused because the queue was at its length bound (backpressure).",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_job_retries_total",
			Help: "Failed deliveries scheduled for a retry with backoff.",
		}),
		reclaimed: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_reclaimed_total",
			Help: "Deliveries taken over from a worker whose lease expired (XAUTOCLAIM).",
		}),
		dead: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_dead_lettered_total",
			Help: "Jobs and malformed entries moved to the dead-letter stream.",
		}),
		trimmed: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_jobs_trimmed_total",
			Help: "Pending stream entries found trimmed away before they were acknowledged.",
		}),
	}
	if reg != nil {
		reg.MustRegister(&queueCollector{q: q, scrapeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_analysis_queue_scrape_errors_total",
			Help: "Scrapes that could not read the queue gauges from Redis.",
		})})
	}
	return m
}

var (
	descLength = prometheus.NewDesc("tickstash_analysis_queue_length",
		"Jobs in the queue stream: waiting plus running (read from Redis at scrape time).", nil, nil)
	descDelayed = prometheus.NewDesc("tickstash_analysis_queue_delayed",
		"Jobs waiting for a retry in the delayed set.", nil, nil)
	descLag = prometheus.NewDesc("tickstash_analysis_queue_consumer_lag",
		"Stream entries not yet delivered to the consumer group (XINFO GROUPS lag).", nil, nil)
	descPending = prometheus.NewDesc("tickstash_analysis_queue_pending",
		"Entries delivered to workers and not yet acknowledged.", nil, nil)
	descDead = prometheus.NewDesc("tickstash_analysis_dead_letter_length",
		"Entries in the dead-letter stream.", nil, nil)
	descConsumers = prometheus.NewDesc("tickstash_analysis_queue_consumers",
		"Consumers in the queue's group: live workers plus dead ones not yet removed by a janitor.", nil, nil)
)

// queueCollector reads the queue gauges from Redis when Prometheus scrapes.
type queueCollector struct {
	q            *Queue
	scrapeErrors prometheus.Counter
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLength, descDelayed, descLag, descPending, descDead, descConsumers} {
		ch <- d
	}
}

// Collect sends the gauges it could read; on a Redis error it sends none of them and
// counts a scrape error, so that one slow Redis does not fail the whole scrape.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	k := c.q.keys
	pipe := c.q.rdb.Pipeline()
	xlen := pipe.XLen(ctx, k.stream())
	zcard := pipe.ZCard(ctx, k.delayed())
	dlen := pipe.XLen(ctx, k.dead())
	groups := pipe.XInfoGroups(ctx, k.stream())
	_, _ = pipe.Exec(ctx)
	if xlen.Err() != nil || zcard.Err() != nil || dlen.Err() != nil {
		c.scrapeErrors.Inc()
		return
	}
	ch <- prometheus.MustNewConstMetric(descLength, prometheus.GaugeValue, float64(xlen.Val()))
	ch <- prometheus.MustNewConstMetric(descDelayed, prometheus.GaugeValue, float64(zcard.Val()))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(dlen.Val()))
	var lag, pending, consumers int64
	if gs, err := groups.Result(); err == nil {
		for _, g := range gs {
			if g.Name == c.q.cfg.Group {
				lag, pending, consumers = max(g.Lag, 0), g.Pending, g.Consumers
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descConsumers, prometheus.GaugeValue, float64(consumers))
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(lag))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(pending))
}
