package bench

import (
	"context"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestLeaderboardBench(t *testing.T) {
	rdb := redistest.Client(t)
	rep, err := Leaderboard(context.Background(), rdb, LeaderboardConfig{Duration: 300 * time.Millisecond, Goroutines: 4, Members: 100, RedisAddr: "127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Increments == 0 || rep.OneCallPerS == 0 || rep.RawZADDPerS == 0 {
		t.Fatalf("empty report: %+v", rep)
	}
	t.Log("\n" + rep.Markdown())
}
