package signals

import (
	"strings"

	"github.com/tickstash/tickstash/market"
)

// Keys. This file is the one place where the package's Redis keys are spelled:
//
//	<prefix>:{<exchange>:<symbol>}:sigprev:<strategy>:<interval>   previous Point of a
//	    strategy on a market and interval (JSON string, TTL RoleConfig.StateTTL). The
//	    market's hash tag is the one the cache package uses, so all strategies' states of
//	    one market are read with one MGET, on Redis Cluster too.
//	<prefix>:sigent:{<user>}    a user's Entitlement (JSON string, TTL EntitlementConfig.TTL)
//	<prefix>:sigent:users       sorted set of users with entitlements, scored by their
//	    key's expiry (Unix ms) and trimmed of expired members on every write
//
// Braces and '%' in a user name are percent-escaped so the hash tag stays intact.

const defaultPrefix = "ts"

type keyspace struct{ prefix string }

func newKeyspace(prefix string) keyspace {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return keyspace{prefix: prefix}
}

func (k keyspace) state(strategy string, ex market.Exchange, sym market.Symbol, iv market.Interval) string {
	return k.prefix + ":{" + string(ex) + ":" + string(sym) + "}:sigprev:" + strategy + ":" + iv.String()
}

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func (k keyspace) entitlement(user string) string {
	return k.prefix + ":sigent:{" + tagEscaper.Replace(user) + "}"
}

func (k keyspace) entitlementUsers() string { return k.prefix + ":sigent:users" }
