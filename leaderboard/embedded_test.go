package leaderboard

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// TestEmbeddedRedis runs the write and read scripts on the in-memory Redis that
// `tickstash run` embeds, whose Lua differs from Redis's in small ways (it reads a
// number's exponent only after a decimal point).
func TestEmbeddedRedis(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	s, err := NewStore(rdb, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"12.5", "-3", "0.000001", "100"} {
		if _, err := s.Increment(ctx, BoardTraderPnL, "alice", decimal.RequireFromString(v)); err != nil {
			t.Fatalf("increment %s: %v", v, err)
		}
	}
	if _, err := s.Increment(ctx, BoardTraderPnL, "bob", decimal.RequireFromString("7")); err != nil {
		t.Fatal(err)
	}
	e, err := s.Rank(ctx, BoardTraderPnL, AllTime, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if e.Rank != 1 || !e.Value.Equal(decimal.RequireFromString("109.500001")) {
		t.Errorf("alice: rank %d value %s; want 1 and 109.500001", e.Rank, e.Value)
	}
	top, err := s.Top(ctx, BoardTraderPnL, AllTime, 10)
	if err != nil || len(top) != 2 || top[1].Member != "bob" {
		t.Errorf("top = %+v, %v", top, err)
	}
}
