package session

import "github.com/tickstash/tickstash/cache/internal/userkey"

// Keys of a user's sessions; the user is the hash tag, so the creation script touches a
// session and the user's index together on Redis Cluster:
//
//	<prefix>:user:{<user>}:sessions          sorted set: session id → created (Unix ms)
//	<prefix>:user:{<user>}:session:<random>  hash: user, data, created
type keyspace struct{ prefix string }

// UserSessions is the index of a user's sessions.
func (k keyspace) UserSessions(user string) string {
	return userkey.UserTag(k.prefix, user) + "sessions"
}

// Session is the hash of one session; random is the id's random part.
func (k keyspace) Session(user, random string) string {
	return userkey.UserTag(k.prefix, user) + "session:" + random
}
