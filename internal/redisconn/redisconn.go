// Package redisconn turns a Redis URL into a go-redis client of the right kind: one
// server, Redis Cluster or Sentinel. It is shared by the cache package and test helpers so
// that every part of tickstash reads TICKSTASH_REDIS_URL the same way.
package redisconn

import (
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// Open parses rawURL and returns a client; it does not dial. The forms are go-redis's:
//
//	redis://[user:pass@]host:port[/db][?opts]             one server (rediss:// for TLS)
//	redis://host1:port1?addr=host2:port2&addr=host3:port3 Redis Cluster, seeded with every address
//	redis://sentinel1:26379?master_name=M&addr=s2:26379   Sentinel, failing over master M
//
// Options such as dial_timeout, read_timeout and pool_size go in the query string as
// go-redis documents them. The error names the URL (with any password elided) and the
// reason.
func Open(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis url %q: scheme must be redis:// or rediss://", u.Redacted())
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url %q: %w", u.Redacted(), err)
		}
		return redis.NewFailoverClient(opts), nil
	case q.Has("addr"):
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis cluster url %q: %w", u.Redacted(), err)
		}
		return redis.NewClusterClient(opts), nil
	default:
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url %q: %w", u.Redacted(), err)
		}
		return redis.NewClient(opts), nil
	}
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}
