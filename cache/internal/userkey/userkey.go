// Package userkey holds what the per-user stores (sessions, user state) and the TTL cache
// share: the user's hash tag, the escaping that keeps names from ending a hash tag early,
// and the checks of user ids and JSON documents.
package userkey

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tickstash/tickstash/cache"
)

// Every key of one user carries the user as its hash tag, so a script can touch a user's
// keys together on Redis Cluster:
//
//	<prefix>:user:{<user>}:...
//
// Braces and '%' in users, keys and tags are percent-escaped, so none can end a hash
// tag early and distinct names keep distinct keys.

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// Escape percent-escapes braces and '%' in s, for use inside a hash tag.
func Escape(s string) string { return tagEscaper.Replace(s) }

// Prefix returns prefix, or cache.DefaultPrefix when it is empty.
func Prefix(prefix string) string {
	if prefix == "" {
		return cache.DefaultPrefix
	}
	return prefix
}

// UserTag returns "<prefix>:user:{<user>}:", the start of every key of the user.
func UserTag(prefix, user string) string {
	return Prefix(prefix) + ":user:{" + Escape(user) + "}:"
}

// ValidUser checks a user id: 1-128 bytes of UTF-8 without control characters or '.'
// (which separates a session id's parts). The error wraps cache.ErrInvalid.
func ValidUser(user string) error {
	if user == "" || len(user) > 128 || !utf8.ValidString(user) || strings.ContainsAny(user, ".") {
		return fmt.Errorf("%w: user %q: want 1-128 bytes of UTF-8 without '.'", cache.ErrInvalid, user)
	}
	for _, r := range user {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: user %q: control character", cache.ErrInvalid, user)
		}
	}
	return nil
}

// ValidJSON checks that data is JSON of at most limit bytes. The error wraps
// cache.ErrTooLarge or cache.ErrInvalid.
func ValidJSON(what string, data []byte, limit int) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %s: %d bytes, limit %d", cache.ErrTooLarge, what, len(data), limit)
	}
	if !json.Valid(data) {
		return fmt.Errorf("%w: %s: not valid JSON", cache.ErrInvalid, what)
	}
	return nil
}
