package redisconn

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ScanKeys calls fn with every key matching pattern and the server that holds it: the
// one server, or each master of a Redis Cluster in turn (SCAN on a cluster client would
// ask one node only). fn may be called concurrently for different masters.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(ctx context.Context, c *redis.Client, key string) error) error {
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := fn(ctx, c, iter.Val()); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return scan(ctx, c)
	default:
		return fmt.Errorf("redis: cannot scan the keys of a %T", rdb)
	}
}

// Keys returns every key matching pattern, on every master.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var mu sync.Mutex
	var out []string
	err := ScanKeys(ctx, rdb, pattern, func(_ context.Context, _ *redis.Client, key string) error {
		mu.Lock()
		out = append(out, key)
		mu.Unlock()
		return nil
	})
	return out, err
}

// DeleteKeys unlinks every key matching pattern, on every master. Keys go one UNLINK
// each: on a cluster, keys of one node may sit in different slots.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) error {
	return ScanKeys(ctx, rdb, pattern, func(ctx context.Context, c *redis.Client, key string) error {
		return c.Unlink(ctx, key).Err()
	})
}
