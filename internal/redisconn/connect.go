package redisconn

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Connect opens a client for rawURL and checks that Redis answers within 5 seconds.
//
// The URL forms (see go-redis's ParseURL, ParseClusterURL and ParseFailoverURL):
//
//	redis://[user:pass@]host:port[/db]                     one server; rediss:// for TLS
//	redis://host1:port1?addr=host2:port2&addr=host3:port3  Redis Cluster
//	redis://sentinel:26379?master_name=NAME&addr=s2:26379  Sentinel
//
// The error names the URL with its password elided and says what to check.
func Connect(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	rdb, err := Open(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w (is it running? check --redis-url / TICKSTASH_REDIS_URL)",
			Redact(rawURL), err)
	}
	return rdb, nil
}
