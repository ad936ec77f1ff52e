package gateway

import "strings"

// keyspace builds every Redis key the gateway writes. Keys of one token share the hash
// tag {<token id>} so that they live in one Redis Cluster slot:
//
//	<p>:gw:tok:<sha256 hex>              hash: one token's record; TTL = its expiry
//	<p>:gw:tokens                        hash: token id -> sha256 hex (the index for list and
//	                                     revoke); TTL refreshed to the latest expiry on create
//	<p>:gw:sig:{<token id>}:<request>    string: a signed request seen once (the SHA-256 hex of its
//	                                     signed string); TTL = while it could be valid
//	<p>:gw:usage:{<token id>}:<yyyymmdd> hash: requests, bytes_in, bytes_out; TTL = usage retention
//	<p>:gw:{audit}                       stream: audit entries of authenticated requests; MINID by
//	                                     age, MAXLEN ~ bound, TTL = retention, refreshed
//	<p>:gw:{audit}:anon                  stream: refusals of credentials that did not authenticate;
//	                                     the same bounds (audit.go says what goes where)
//	<p>:gw:{audit}:counts                stream: refusals counted per minute, client and reason;
//	                                     the same bounds
type keyspace struct{ prefix string }

func newKeyspace(prefix string) keyspace {
	if prefix == "" {
		prefix = "ts"
	}
	return keyspace{prefix: prefix}
}

func (k keyspace) token(hash string) string { return k.prefix + ":gw:tok:" + hash }
func (k keyspace) tokens() string           { return k.prefix + ":gw:tokens" }
func (k keyspace) audit() string            { return k.prefix + ":gw:{audit}" }
func (k keyspace) auditAnon() string        { return k.prefix + ":gw:{audit}:anon" }
func (k keyspace) auditCounts() string      { return k.prefix + ":gw:{audit}:counts" }

func (k keyspace) signature(tokenID, sig string) string {
	return k.prefix + ":gw:sig:{" + tokenID + "}:" + sig
}

func (k keyspace) usage(tokenID, day string) string {
	return k.prefix + ":gw:usage:{" + tokenID + "}:" + strings.ReplaceAll(day, "-", "")
}
