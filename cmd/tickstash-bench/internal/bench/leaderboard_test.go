package bench

import (
	"context"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestLeaderboardBench(t *testing.T) {
	rdb := redistest.Client(t)
	// On Redis Cluster there is no one address for redis-benchmark: no reference run.
	cfg := LeaderboardConfig{Duration: 300 * time.Millisecond, Goroutines: 4, Members: 100, RedisAddr: redistest.Addr()}
	rep, err := Leaderboard(context.Background(), rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Increments == 0 || rep.OneCallPerS == 0 || (cfg.RedisAddr != "" && rep.RawZADDPerS == 0) {
		t.Fatalf("empty report: %+v", rep)
	}
	t.Log("\n" + rep.Markdown())
}
