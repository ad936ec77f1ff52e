package ttlcache

import "github.com/tickstash/tickstash/cache/internal/userkey"

// Keys of the TTL cache layer; the cache key, or the tag, is the hash tag:
//
//	<prefix>:c:<cache>:{<key>}       a cached value (envelope + encoded value)
//	<prefix>:c:<cache>:tag:{<tag>}   sorted set: cache key → expiry (Unix ms)
type keyspace struct{ prefix string }

// CacheEntry is the key of one value of the named TTL cache.
func (k keyspace) CacheEntry(cache, key string) string {
	return userkey.Prefix(k.prefix) + ":c:" + cache + ":{" + userkey.Escape(key) + "}"
}

// CacheTag is the set of keys of the named TTL cache that carry tag.
func (k keyspace) CacheTag(cache, tag string) string {
	return userkey.Prefix(k.prefix) + ":c:" + cache + ":tag:{" + userkey.Escape(tag) + "}"
}
