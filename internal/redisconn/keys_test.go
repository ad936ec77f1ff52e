package redisconn_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
)

// TestKeysAndDeleteKeys writes keys in many hash slots (so they spread over every master
// on Redis Cluster), finds them all, and deletes them all.
func TestKeysAndDeleteKeys(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	for i := 0; i < 50; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("%s:{%d}:k", prefix, i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := redisconn.Keys(ctx, rdb, prefix+"*")
	if err != nil || len(keys) != 50 {
		t.Fatalf("Keys found %d keys (%v), want 50", len(keys), err)
	}
	if err := redisconn.DeleteKeys(ctx, rdb, prefix+"*"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := redisconn.Keys(ctx, rdb, prefix+"*"); len(keys) != 0 {
		t.Errorf("%d keys left after DeleteKeys", len(keys))
	}
}
