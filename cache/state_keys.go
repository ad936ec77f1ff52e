package cache

import "strings"

// Keys of the state for bots (sessions, user state) and of the TTL cache layer. Every
// key of one user carries the user as its hash tag, so a script can touch a user's
// sessions and their index together on Redis Cluster:
//
//	<prefix>:user:{<user>}:sessions          sorted set: session id → created (Unix ms)
//	<prefix>:user:{<user>}:session:<random>  hash: user, data, created
//	<prefix>:user:{<user>}:state             hash: v (version), doc (JSON), updated
//	<prefix>:c:<cache>:{<key>}               a cached value (envelope + encoded value)
//	<prefix>:c:<cache>:tag:{<tag>}           sorted set: cache key → expiry (Unix ms)
//
// Braces and '%' in users, keys and tags are percent-escaped, so none can end a hash
// tag early and distinct names keep distinct keys.

var stateTagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func escapeTag(s string) string { return stateTagEscaper.Replace(s) }

// userTag returns "<prefix>:user:{<user>}:", the start of every key of the user.
func (k Keyspace) userTag(user string) string {
	return k.prefix + ":user:{" + escapeTag(user) + "}:"
}

// UserSessions is the index of a user's sessions.
func (k Keyspace) UserSessions(user string) string { return k.userTag(user) + "sessions" }

// Session is the hash of one session; random is the id's random part.
func (k Keyspace) Session(user, random string) string { return k.userTag(user) + "session:" + random }

// UserState is the hash holding a user's state document and its version.
func (k Keyspace) UserState(user string) string { return k.userTag(user) + "state" }

// CacheEntry is the key of one value of the named TTL cache.
func (k Keyspace) CacheEntry(cache, key string) string {
	return k.prefix + ":c:" + cache + ":{" + escapeTag(key) + "}"
}

// CacheTag is the set of keys of the named TTL cache that carry tag.
func (k Keyspace) CacheTag(cache, tag string) string {
	return k.prefix + ":c:" + cache + ":tag:{" + escapeTag(tag) + "}"
}
