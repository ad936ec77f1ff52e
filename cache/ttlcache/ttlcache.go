package ttlcache

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/tickstash/tickstash/cache"
)

//go:embed ttlcache_tag.lua
var ttlCacheTagLua string

var ttlCacheTag = redis.NewScript(ttlCacheTagLua)

// ErrMiss is returned by TTLCache.Get when the key holds no value.
var ErrMiss = errors.New("cache: miss")

// TTLCacheConfig configures a TTLCache. Every zero value means the documented default.
type TTLCacheConfig struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// TTL is how long a value is fresh. 0 means 5 minutes.
	TTL time.Duration
	// StaleTTL is how long after it stops being fresh a value is still served by
	// GetOrLoad while one background load refreshes it (stale-while-revalidate).
	// 0 means never: a value past TTL is gone.
	StaleTTL time.Duration
	// NegativeTTL is how long GetOrLoad remembers that the loader found nothing (returned
	// an error wrapping ErrNotFound). 0 means 30 seconds; negative disables it.
	NegativeTTL time.Duration
	// Jitter adds up to this fraction of a TTL at random to each write, so that values
	// written together do not expire together. 0 means 0.1; negative means none.
	Jitter float64
	// LoadTimeout bounds one load, which runs detached from any one caller's context
	// because callers share it. 0 means 10 seconds.
	LoadTimeout time.Duration
	// MaxValueBytes: a larger encoded value is returned but not cached. 0 means 1 MiB.
	MaxValueBytes int
	// MaxTagKeys bounds each tag's set of keys; values pushed out of it are deleted.
	// 0 means 10 000.
	MaxTagKeys int
	// Now is the clock for freshness; nil means time.Now.
	Now func() time.Time
}

// TTLCache is a typed cache in Redis in front of a slow backend: values encoded as JSON,
// read-through with one load per key at a time in this process, stale-while-revalidate,
// negative caching, jittered TTLs, and invalidation by key and by tag.
// It is safe for concurrent use.
type TTLCache[V any] struct {
	rdb  redis.UniversalClient
	keys keyspace
	name string
	cfg  TTLCacheConfig
	sf   singleflight.Group

	lookups       *prometheus.CounterVec
	loads         *prometheus.CounterVec
	loadSeconds   prometheus.Histogram
	invalidations *prometheus.CounterVec
}

var cacheNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// NewTTLCache returns the cache called name (1-64 of a-z 0-9 . _ -, its keys'
// namespace) over rdb. Its metrics carry the label cache=name and are registered with
// reg: one registry can hold several caches of different names. It returns an error
// wrapping ErrInvalid for a bad name.
func NewTTLCache[V any](rdb redis.UniversalClient, name string, cfg TTLCacheConfig, reg prometheus.Registerer) (*TTLCache[V], error) {
	if !cacheNameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: cache name %q: want 1-64 of a-z 0-9 . _ -", cache.ErrInvalid, name)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.StaleTTL < 0 {
		cfg.StaleTTL = 0
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 30 * time.Second
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 10 * time.Second
	}
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = 1 << 20
	}
	if cfg.MaxTagKeys <= 0 {
		cfg.MaxTagKeys = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := promauto.With(reg)
	labels := prometheus.Labels{"cache": name}
	return &TTLCache[V]{
		rdb: rdb, keys: keyspace{prefix: cfg.Prefix}, name: name, cfg: cfg,
		lookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_cache_lookups_total", ConstLabels: labels,
			Help: "TTL cache lookups by result: hit, stale (served while refreshing), negative (remembered not-found), miss, error (Redis failed; the loader answered).",
		}, []string{"result"}),
		loads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_cache_loads_total", ConstLabels: labels,
			Help: "Loader calls of the TTL cache by outcome: ok, not_found, error.",
		}, []string{"outcome"}),
		loadSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "tickstash_cache_load_duration_seconds", ConstLabels: labels,
			Help:    "Time of one loader call of the TTL cache, including writing the value.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		invalidations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_cache_invalidations_total", ConstLabels: labels,
			Help: "TTL cache invalidations by kind: key, tag.",
		}, []string{"by"}),
	}, nil
}

// An entry is stored as "<fresh until, Unix ms>|<kind>|<JSON>", kind 'v' for a value and
// 'n' for a remembered not-found.
type entry struct {
	freshUntil int64
	negative   bool
	payload    []byte
}

func parseEntry(b []byte) (entry, bool) {
	i := bytes.IndexByte(b, '|')
	if i < 0 || len(b) < i+3 || b[i+2] != '|' {
		return entry{}, false
	}
	ms, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil {
		return entry{}, false
	}
	return entry{freshUntil: ms, negative: b[i+1] == 'n', payload: b[i+3:]}, true
}

func (c *TTLCache[V]) jitter(d time.Duration) time.Duration {
	if c.cfg.Jitter <= 0 || d <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*c.cfg.Jitter*float64(d))
}

// lookup reads key's entry; ok is false on a miss.
func (c *TTLCache[V]) lookup(ctx context.Context, key string) (entry, bool, error) {
	b, err := c.rdb.Get(ctx, c.keys.CacheEntry(c.name, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("cache: %s: get %q: %w", c.name, key, err)
	}
	e, ok := parseEntry(b)
	return e, ok, nil
}

// Get returns the value of key. It returns ErrMiss when there is none or it is past its
// TTL (stale values are for GetOrLoad), an error wrapping ErrNotFound when a loader's
// not-found is remembered, or the Redis error.
func (c *TTLCache[V]) Get(ctx context.Context, key string) (V, error) {
	var v V
	e, ok, err := c.lookup(ctx, key)
	switch {
	case err != nil:
		c.lookups.WithLabelValues("error").Inc()
		return v, err
	case !ok || e.freshUntil < c.cfg.Now().UnixMilli():
		c.lookups.WithLabelValues("miss").Inc()
		return v, ErrMiss
	case e.negative:
		c.lookups.WithLabelValues("negative").Inc()
		return v, fmt.Errorf("%w: %s %q (remembered)", cache.ErrNotFound, c.name, key)
	}
	if err := json.Unmarshal(e.payload, &v); err != nil {
		return v, fmt.Errorf("cache: %s: decode %q: %w", c.name, key, err)
	}
	c.lookups.WithLabelValues("hit").Inc()
	return v, nil
}

// Set stores v under key for the TTL (jittered), plus StaleTTL during which GetOrLoad
// serves it while refreshing, and records key under each tag for InvalidateTag.
// A value that encodes larger than MaxValueBytes is not stored, without error.
func (c *TTLCache[V]) Set(ctx context.Context, key string, v V, tags ...string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: %s: encode %q: %w", c.name, key, err)
	}
	if len(b) > c.cfg.MaxValueBytes {
		return nil
	}
	return c.write(ctx, key, 'v', b, c.jitter(c.cfg.TTL), tags)
}

func (c *TTLCache[V]) write(ctx context.Context, key string, kind byte, payload []byte, fresh time.Duration, tags []string) error {
	now := c.cfg.Now()
	ttl := fresh
	if kind == 'v' {
		ttl += c.cfg.StaleTTL
	}
	k := c.keys.CacheEntry(c.name, key)
	// Tags first: a value is never live without being findable by its tags.
	for _, tag := range tags {
		dropped, err := ttlCacheTag.Run(ctx, c.rdb, []string{c.keys.CacheTag(c.name, tag)},
			now.UnixMilli(), now.Add(ttl).UnixMilli(), ttl.Milliseconds(), c.cfg.MaxTagKeys, k).StringSlice()
		if err != nil {
			return fmt.Errorf("cache: %s: tag %q: %w", c.name, tag, err)
		}
		if err := c.del(ctx, dropped); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, len(payload)+16)
	buf = strconv.AppendInt(buf, now.Add(fresh).UnixMilli(), 10)
	buf = append(buf, '|', kind, '|')
	buf = append(buf, payload...)
	if err := c.rdb.Set(ctx, k, buf, ttl).Err(); err != nil {
		return fmt.Errorf("cache: %s: set %q: %w", c.name, key, err)
	}
	return nil
}

// del deletes full keys, one command each (they live in different cluster slots),
// pipelined.
func (c *TTLCache[V]) del(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: %s: delete: %w", c.name, err)
	}
	return nil
}

// Loader produces the value of a key from the backend. It returns an error wrapping
// ErrNotFound when the backend has none, which is remembered for NegativeTTL.
type Loader[V any] func(ctx context.Context, key string) (V, error)

// GetOrLoad returns key's value from the cache, or else from load, caching what load
// returns (with tags). Concurrent misses of one key in this process share one load call.
// A value past its TTL but within StaleTTL is returned at once while one background load
// refreshes it. A remembered not-found returns an error wrapping ErrNotFound without
// calling load. When Redis fails, load answers (the error is counted, not returned).
// Errors from load are returned and not cached, except ErrNotFound.
func (c *TTLCache[V]) GetOrLoad(ctx context.Context, key string, load Loader[V], tags ...string) (V, error) {
	var zero V
	e, ok, err := c.lookup(ctx, key)
	if err != nil {
		c.lookups.WithLabelValues("error").Inc()
	}
	if ok {
		now := c.cfg.Now().UnixMilli()
		if e.negative && e.freshUntil >= now {
			c.lookups.WithLabelValues("negative").Inc()
			return zero, fmt.Errorf("%w: %s %q (remembered)", cache.ErrNotFound, c.name, key)
		}
		if !e.negative {
			var v V
			if err := json.Unmarshal(e.payload, &v); err == nil {
				if e.freshUntil >= now {
					c.lookups.WithLabelValues("hit").Inc()
					return v, nil
				}
				c.lookups.WithLabelValues("stale").Inc()
				go func() { _, _ = c.load(context.WithoutCancel(ctx), key, load, tags) }()
				return v, nil
			}
		}
	}
	if err == nil {
		c.lookups.WithLabelValues("miss").Inc()
	}
	return c.load(ctx, key, load, tags)
}

// load calls the loader once per key at a time and caches its answer.
func (c *TTLCache[V]) load(ctx context.Context, key string, load Loader[V], tags []string) (V, error) {
	ch := c.sf.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
		defer cancel()
		// A caller that missed just before another flight for key wrote its value finds
		// the value here instead of loading it again.
		if e, ok, err := c.lookup(lctx, key); err == nil && ok && !e.negative && e.freshUntil >= c.cfg.Now().UnixMilli() {
			var v V
			if err := json.Unmarshal(e.payload, &v); err == nil {
				return v, nil
			}
		}
		start := time.Now()
		v, err := load(lctx, key)
		defer func() { c.loadSeconds.Observe(time.Since(start).Seconds()) }()
		switch {
		case errors.Is(err, cache.ErrNotFound):
			c.loads.WithLabelValues("not_found").Inc()
			if c.cfg.NegativeTTL > 0 {
				_ = c.write(lctx, key, 'n', nil, c.jitter(c.cfg.NegativeTTL), tags)
			}
			return v, err
		case err != nil:
			c.loads.WithLabelValues("error").Inc()
			return v, err
		}
		c.loads.WithLabelValues("ok").Inc()
		// A failed cache write does not fail the read: the value is good.
		_ = c.Set(lctx, key, v, tags...)
		return v, nil
	})
	select {
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	case r := <-ch:
		v, _ := r.Val.(V)
		return v, r.Err
	}
}

// Invalidate deletes the values of keys.
func (c *TTLCache[V]) Invalidate(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = c.keys.CacheEntry(c.name, k)
	}
	c.invalidations.WithLabelValues("key").Add(float64(len(keys)))
	return c.del(ctx, full)
}

// InvalidateTag deletes every value recorded under each tag, and the tags.
func (c *TTLCache[V]) InvalidateTag(ctx context.Context, tags ...string) error {
	for _, tag := range tags {
		tk := c.keys.CacheTag(c.name, tag)
		var members *redis.StringSliceCmd
		// Take and delete the tag at once, so a key tagged meanwhile stays listed.
		_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			members = p.ZRange(ctx, tk, 0, -1)
			p.Del(ctx, tk)
			return nil
		})
		if err != nil {
			return fmt.Errorf("cache: %s: invalidate tag %q: %w", c.name, tag, err)
		}
		if err := c.del(ctx, members.Val()); err != nil {
			return err
		}
		c.invalidations.WithLabelValues("tag").Inc()
	}
	return nil
}
