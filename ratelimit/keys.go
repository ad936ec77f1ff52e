package ratelimit

import "strings"

// Keys. Every key of one identifier carries the identifier as its hash tag, so one
// script can touch all of them on Redis Cluster:
//
//	<prefix>:rl:{<identifier>}:<policy>   state of one policy, a string with a TTL
//
// Braces and '%' in an identifier are percent-escaped, so an identifier cannot end the
// hash tag early (which would split its keys across slots) and distinct identifiers
// keep distinct keys.

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// identifierTag returns "<prefix>:rl:{<escaped identifier>}:", the start of every key
// of the identifier.
func identifierTag(prefix, identifier string) string {
	return prefix + ":rl:{" + tagEscaper.Replace(identifier) + "}:"
}

// policyKey returns the state key of one policy of the identifier.
func policyKey(prefix, identifier, policy string) string {
	return identifierTag(prefix, identifier) + policy
}
