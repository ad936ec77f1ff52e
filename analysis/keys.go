package analysis

import (
	"github.com/tickstash/tickstash/market"
)

// queueTag is the hash tag every queue key carries, so that the queue's scripts touch one
// cluster slot. The price is that the whole queue (and the results it fences) lives on one
// node of a Redis Cluster; a second queue would need a second tag.
const queueTag = "{aq}"

// defaultPrefix is the key prefix when QueueConfig.Prefix is empty (cache.DefaultPrefix).
const defaultPrefix = "ts"

// queueKeys builds every Redis key of the analysis queue and its results: the one place
// where they are spelled. All of them look like "<prefix>:{aq}:...".
type queueKeys struct {
	base string // "<prefix>:{aq}:"
}

func newQueueKeys(prefix string) queueKeys {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return queueKeys{base: prefix + ":" + queueTag + ":"}
}

// stream is the job stream read by the consumer group; entries carry a job id.
func (k queueKeys) stream() string { return k.base + "jobs" }

// delayed is the sorted set of job ids waiting for a retry, scored by due Unix ms.
func (k queueKeys) delayed() string { return k.base + "delayed" }

// dead is the dead-letter stream.
func (k queueKeys) dead() string { return k.base + "dead" }

// fence is the counter that hands out fencing tokens, one per delivery.
func (k queueKeys) fence() string { return k.base + "fence" }

// jobPrefix starts every job hash; the job id follows.
func (k queueKeys) jobPrefix() string { return k.base + "job:" }

// job is the hash holding a job's spec, status and lease.
func (k queueKeys) job(id string) string { return k.base + "job:" + id }

// target names what a job analyses: exchange:SYMBOL:interval:analyzer.
func target(ex market.Exchange, sym market.Symbol, iv market.Interval, analyzer string) string {
	return string(ex) + ":" + string(sym) + ":" + iv.String() + ":" + analyzer
}

// coalesce holds the id of the job currently waiting or running for a target.
func (k queueKeys) coalesce(t string) string { return k.coalescePrefix() + t }

// coalescePrefix starts every coalesce key; the target follows (queue_enqueue.lua builds
// the key from it).
func (k queueKeys) coalescePrefix() string { return k.base + "co:" }

// result is the hash with the latest fenced result of a target.
func (k queueKeys) result(t string) string { return k.base + "result:" + t }

// state holds the saved indicator streams of a target.
func (k queueKeys) state(t string) string { return k.base + "state:" + t }
