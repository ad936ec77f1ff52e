package redistest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
)

func TestStartCluster(t *testing.T) {
	url := redistest.StartCluster(t)
	rdb, err := redisconn.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("%s opens a %T, want a cluster client", url, rdb)
	}
	ctx := context.Background()
	var masters atomic.Int32 // ForEachMaster runs fn concurrently
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		masters.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := masters.Load(); n != 3 {
		t.Fatalf("%d masters, want 3", n)
	}
	// Keys land on different nodes and still read back through the cluster client.
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := rdb.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v := rdb.Get(ctx, k).Val(); v != k {
			t.Fatalf("GET %s = %q", k, v)
		}
	}
}
