package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache/session"
	"github.com/tickstash/tickstash/cache/ttlcache"
	"github.com/tickstash/tickstash/cache/userstate"
	"github.com/tickstash/tickstash/internal/redistest"
)

// TestStateOnCluster runs sessions, user state and the TTL cache on a 3-node Redis
// Cluster: every multi-key command and script must stay within one slot.
func TestStateOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Setenv("TICKSTASH_TEST_REDIS_URL", redistest.StartCluster(t))
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	sessions := session.NewSessionStore(rdb, session.SessionConfig{Prefix: prefix, MaxPerUser: 2}, reg)
	states := userstate.NewUserStateStore(rdb, userstate.UserStateConfig{Prefix: prefix}, reg)
	c, err := ttlcache.NewTTLCache[string](rdb, "c", ttlcache.TTLCacheConfig{Prefix: prefix, MaxTagKeys: 2}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		user := fmt.Sprintf("user{%d}", i)
		for j := 0; j < 3; j++ {
			s, err := sessions.Create(ctx, user, json.RawMessage(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if err := sessions.Touch(ctx, s.ID); err != nil {
				t.Fatal(err)
			}
			if j == 2 {
				if err := sessions.Destroy(ctx, s.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if l, err := sessions.List(ctx, user); err != nil || len(l) != 1 {
			t.Fatalf("list: %d %v", len(l), err)
		}
		if _, err := states.Modify(ctx, user, func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`[1]`), nil }); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, user, "v", "t1", "t2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.InvalidateTag(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "user{1}", "user{2}"); err != nil {
		t.Fatal(err)
	}
}
