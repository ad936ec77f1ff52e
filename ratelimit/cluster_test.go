package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

// TestCluster runs multi-policy checks on a 3-node Redis Cluster: each script touches
// several keys, which only works if they share a slot, and identifiers spread over
// every node.
func TestCluster(t *testing.T) {
	t.Parallel()
	rdb, err := redisconn.Open(redistest.StartCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	lim, _ := newLimiter(t, rdb, policies(
		ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 5, Window: time.Hour},
		ratelimit.Policy{Name: "sw", Algorithm: ratelimit.SlidingWindow, Limit: 6, Window: time.Hour},
		ratelimit.Policy{Name: "tb", Algorithm: ratelimit.TokenBucket, Limit: 1, Window: time.Hour, Burst: 7},
		ratelimit.Policy{Name: "g", Algorithm: ratelimit.GCRA, Limit: 8, Window: time.Hour},
	))

	const ids, callers = 12, 10
	var allowed [ids]atomic.Int64
	var wg sync.WaitGroup
	for i := range ids {
		for range callers {
			wg.Go(func() {
				res, err := lim.Allow(ctx, fmt.Sprintf("user-%d", i))
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					allowed[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	for i := range ids {
		if got := allowed[i].Load(); got != 5 {
			t.Errorf("user-%d: %d of %d allowed, want 5 (the fixed window's limit)", i, got, callers)
		}
	}

	// The identifiers' keys are spread over all three masters, each with a TTL.
	cc := rdb.(*redis.ClusterClient)
	var nodes, keys atomic.Int32
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		ks, err := c.Keys(ctx, "*:rl:*").Result()
		if err != nil {
			return err
		}
		if len(ks) > 0 {
			nodes.Add(1)
		}
		keys.Add(int32(len(ks)))
		for _, k := range ks {
			if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("key %s: PTTL %v", k, ttl)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nodes.Load() != 3 || keys.Load() != ids*4 {
		t.Errorf("%d keys on %d nodes, want %d on 3", keys.Load(), nodes.Load(), ids*4)
	}

	if err := lim.Reset(ctx, "user-0"); err != nil {
		t.Fatal(err)
	}
	if res := allow(t, lim, "user-0", 1); !res.Allowed || res.Remaining != 4 {
		t.Fatalf("after reset: %+v", res)
	}
	// Flushing the script cache forces the NOSCRIPT fallback to EVAL on every node.
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	if res := allow(t, lim, "user-0", 1); !res.Allowed || res.Remaining != 3 {
		t.Fatalf("after SCRIPT FLUSH: %+v", res)
	}
	// Again, with concurrent checks in many slots: batches are pipelined per slot, and
	// the slots whose node answers NOSCRIPT fall back to EVAL.
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		wg.Go(func() {
			res, err := lim.AllowN(ctx, fmt.Sprintf("fresh-%d", i), 2)
			if err != nil || !res.Allowed || res.Remaining != 3 {
				t.Errorf("fresh-%d after SCRIPT FLUSH: %+v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
}
