package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestLeaderboardBench(t *testing.T) {
	rdb := redistest.Client(t)
	// On Redis Cluster there is no one address for redis-benchmark: no reference run.
	cfg := LeaderboardConfig{Duration: 400 * time.Millisecond, Rounds: 2, Goroutines: 4, Members: 100, RedisAddr: redistest.Addr()}
	rep, err := Leaderboard(context.Background(), rdb, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Increments == 0 || len(rep.OpsPerS) != 2 || len(rep.OneCallPerS) != 2 || (cfg.RedisAddr != "" && len(rep.RawZADDPerS) != 2) {
		t.Fatalf("report %+v: want 2 rounds of each case", rep)
	}
	for i := range rep.OneCallPerS {
		if rep.OpsPerS[i] <= 0 || rep.OneCallPerS[i] <= 0 || (cfg.RedisAddr != "" && rep.RawZADDPerS[i] <= 0) {
			t.Errorf("round %d: rates %v %v %v", i, rep.OpsPerS[i], rep.OneCallPerS[i], rep.RawZADDPerS)
		}
	}
	if m, lo, hi := rep.OneCallRatio(); cfg.RedisAddr != "" && !(lo > 0 && lo <= m && m <= hi) {
		t.Errorf("ratio median %v, spread %v–%v", m, lo, hi)
	}
	t.Log("\n" + rep.Markdown())
}
