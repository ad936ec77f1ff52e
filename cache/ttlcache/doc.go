// Package ttlcache is a typed cache layer in Redis: values with a TTL, read-through
// loading with one loader call per key for concurrent misses (singleflight), stale
// values served while a refresh runs, remembered not-founds, jitter against stampedes
// and invalidation by key or by tag.
//
//	c, err := ttlcache.NewTTLCache[Profile](rdb, "profiles", ttlcache.TTLCacheConfig{TTL: time.Minute}, reg)
//	p, err := c.GetOrLoad(ctx, "alice", loadProfile, "team:blue")
//	err = c.InvalidateTag(ctx, "team:blue")
//
// A loader reports a missing value with an error wrapping cache.ErrNotFound; Get
// returns ErrMiss when the key holds no value.
package ttlcache
