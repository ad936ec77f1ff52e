package userstate

import "github.com/tickstash/tickstash/cache/internal/userkey"

// Keys of users' state documents, one hash per user with the user as its hash tag:
//
//	<prefix>:user:{<user>}:state   hash: v (version), doc (JSON), updated
type keyspace struct{ prefix string }

// UserState is the hash holding a user's state document and its version.
func (k keyspace) UserState(user string) string { return userkey.UserTag(k.prefix, user) + "state" }
