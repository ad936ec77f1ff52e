// Package obs exports the health of tickstash's clients of Redis and NATS as Prometheus
// metrics. The values are read when Prometheus scrapes, not sampled in the background:
//
//	reg := prometheus.NewRegistry()
//	if err := obs.RegisterRedis(reg, rdb); err != nil { ... }
//	if err := obs.RegisterNATS(reg, nc); err != nil { ... }
//
// Redis metrics are named tickstash_redis_*, NATS metrics tickstash_nats_*. Neither
// carries labels: a process has one Redis client and one NATS connection.
package obs
