package obs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// pinger is what RedisCollector needs of a client: go-redis's Client, ClusterClient,
// Ring and UniversalClient all have it.
type pinger interface {
	PoolStats() *redis.PoolStats
	Ping(ctx context.Context) *redis.StatusCmd
}

var _ pinger = (redis.UniversalClient)(nil)

var (
	descRedisUp = prometheus.NewDesc("tickstash_redis_up",
		"1 if Redis answered PING during this scrape, 0 if it failed or timed out.", nil, nil)
	descRedisPing = prometheus.NewDesc("tickstash_redis_ping_duration_seconds",
		"Round trip of the PING sent during this scrape (the timeout when it failed).", nil, nil)
	descRedisHits = prometheus.NewDesc("tickstash_redis_pool_hits_total",
		"Times a free connection was found in the go-redis pool.", nil, nil)
	descRedisMisses = prometheus.NewDesc("tickstash_redis_pool_misses_total",
		"Times no free connection was in the pool and a new one was dialled.", nil, nil)
	descRedisTimeouts = prometheus.NewDesc("tickstash_redis_pool_timeouts_total",
		"Times a caller gave up waiting for a pool connection (PoolTimeout).", nil, nil)
	descRedisWaits = prometheus.NewDesc("tickstash_redis_pool_waits_total",
		"Times a caller had to wait for a pool connection.", nil, nil)
	descRedisWaitSeconds = prometheus.NewDesc("tickstash_redis_pool_wait_seconds_total",
		"Total time callers spent waiting for a pool connection.", nil, nil)
	descRedisUnusable = prometheus.NewDesc("tickstash_redis_pool_unusable_connections_total",
		"Pooled connections found unusable when taken and discarded.", nil, nil)
	descRedisStale = prometheus.NewDesc("tickstash_redis_pool_stale_connections_total",
		"Stale (idle too long or broken) connections removed from the pool.", nil, nil)
	descRedisTotal = prometheus.NewDesc("tickstash_redis_pool_connections",
		"Connections in the pool, idle and in use.", nil, nil)
	descRedisIdle = prometheus.NewDesc("tickstash_redis_pool_idle_connections",
		"Idle connections in the pool.", nil, nil)
	descRedisPending = prometheus.NewDesc("tickstash_redis_pool_pending_requests",
		"Requests waiting for a pool connection right now.", nil, nil)
)

// RedisCollector exports a go-redis client's pool statistics and whether Redis answers
// PING, read at scrape time. For a cluster client the pool figures are summed over the
// nodes (go-redis does that) and PING goes to one node.
type RedisCollector struct {
	rdb     pinger
	timeout time.Duration
}

// NewRedisCollector returns a collector for rdb. Each scrape sends one PING with a
// one-second timeout.
func NewRedisCollector(rdb redis.UniversalClient) *RedisCollector {
	return &RedisCollector{rdb: rdb, timeout: time.Second}
}

// RegisterRedis registers a RedisCollector for rdb on reg. It returns reg's error when
// the tickstash_redis_* metrics are already registered.
func RegisterRedis(reg prometheus.Registerer, rdb redis.UniversalClient) error {
	return reg.Register(NewRedisCollector(rdb))
}

// Describe implements prometheus.Collector.
func (c *RedisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRedisUp, descRedisPing, descRedisHits, descRedisMisses,
		descRedisTimeouts, descRedisWaits, descRedisWaitSeconds, descRedisUnusable, descRedisStale,
		descRedisTotal, descRedisIdle, descRedisPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It pings first, so the pool figures include
// the connection the ping used.
func (c *RedisCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	err := c.rdb.Ping(ctx).Err()
	took := time.Since(start)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descRedisUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descRedisPing, prometheus.GaugeValue, took.Seconds())

	s := c.rdb.PoolStats()
	if s == nil {
		return
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descRedisHits, float64(s.Hits))
	counter(descRedisMisses, float64(s.Misses))
	counter(descRedisTimeouts, float64(s.Timeouts))
	counter(descRedisWaits, float64(s.WaitCount))
	counter(descRedisWaitSeconds, time.Duration(s.WaitDurationNs).Seconds())
	counter(descRedisUnusable, float64(s.Unusable))
	counter(descRedisStale, float64(s.StaleConns))
	gauge(descRedisTotal, float64(s.TotalConns))
	gauge(descRedisIdle, float64(s.IdleConns))
	gauge(descRedisPending, float64(s.PendingRequests))
}
