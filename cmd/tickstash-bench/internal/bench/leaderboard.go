package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/leaderboard"
)

// LeaderboardConfig configures the leaderboard benchmark. Zero values mean the defaults.
type LeaderboardConfig struct {
	// Duration of the tickstash run; 0 means 3 seconds.
	Duration time.Duration
	// Goroutines calling concurrently (and redis-benchmark clients); 0 means 32.
	Goroutines int
	// Members on the board; 0 means 10 000.
	Members int
	// RedisAddr is host:port for redis-benchmark; "" skips the reference run.
	RedisAddr string
}

// LeaderboardReport is the outcome of Leaderboard.
type LeaderboardReport struct {
	Machine      Machine
	Config       LeaderboardConfig
	OpsPerS      float64 // Increment + Rank pairs per second (two calls)
	OneCallPerS  float64 // IncrementAndRank calls per second (the same work in one call)
	RawZADDPerS  float64 // 0 when the reference did not run
	RawCommand   string
	Increments   int64 // Increment + Rank pairs done; IncrementAndRank calls are not counted
	WindowsPerOp int
}

// Markdown renders the report.
func (r LeaderboardReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### bench leaderboard\n\n%s\n\n| what | rate | note |\n|---|---|---|\n", r.Machine.Markdown())
	fmt.Fprintf(&b, "| tickstash leaderboard: Increment (exact, %d windows) + Rank | %.0f pairs/s | %d goroutines, %d members; 2 round trips |\n",
		r.WindowsPerOp, r.OpsPerS, r.Config.Goroutines, r.Config.Members)
	fmt.Fprintf(&b, "| tickstash leaderboard: IncrementAndRank (the same, one call) | %.0f pairs/s | 1 round trip |\n", r.OneCallPerS)
	if r.RawZADDPerS > 0 {
		fmt.Fprintf(&b, "| raw ZADD (`%s`) | %.0f ZADD/s | reference, unpipelined |\n", r.RawCommand, r.RawZADDPerS)
		fmt.Fprintf(&b, "\nRatio to raw ZADD: Increment + Rank **%.2f**, IncrementAndRank **%.2f** (one increment adds exactly and writes 4 windows in one script).\n",
			r.OpsPerS/r.RawZADDPerS, r.OneCallPerS/r.RawZADDPerS)
	}
	return b.String()
}

// Leaderboard runs Increment followed by Rank on the traders.pnl board (all four
// windows) from many goroutines under a key prefix of its own (deleted afterwards), then
// the same as one IncrementAndRank call, then redis-benchmark's ZADD with as many clients
// on the same server.
func Leaderboard(ctx context.Context, rdb redis.UniversalClient, cfg LeaderboardConfig) (LeaderboardReport, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 32
	}
	if cfg.Members <= 0 {
		cfg.Members = 10_000
	}
	rep := LeaderboardReport{Machine: DescribeMachine(ctx, rdb), Config: cfg, WindowsPerOp: 4}
	prefix := randomPrefix("tsbench")
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, prefix+"*") }()
	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{Prefix: prefix}, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	if rep.Increments, rep.OpsPerS, err = leaderboardRun(ctx, lb, cfg, false); err != nil {
		return rep, err
	}
	if _, rep.OneCallPerS, err = leaderboardRun(ctx, lb, cfg, true); err != nil {
		return rep, err
	}
	if cfg.RedisAddr != "" {
		n := int(max(rep.OpsPerS, rep.OneCallPerS)*cfg.Duration.Seconds()) + 10_000
		rep.RawZADDPerS, rep.RawCommand, err = redisBenchmarkZADD(ctx, cfg.RedisAddr, prefix+":zadd", cfg.Goroutines, n)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// leaderboardRun calls Increment then Rank (or IncrementAndRank when one) from
// cfg.Goroutines goroutines for cfg.Duration and returns the pairs done and their rate.
func leaderboardRun(ctx context.Context, lb *leaderboard.Store, cfg LeaderboardConfig, one bool) (int64, float64, error) {
	var ops atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(cfg.Duration)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < cfg.Goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline) && ctx.Err() == nil; i += cfg.Goroutines {
				m := "user-" + strconv.Itoa(i%cfg.Members)
				delta := decimal.New(int64(i%1000)-500, -2)
				if one {
					if _, err := lb.IncrementAndRank(ctx, leaderboard.BoardTraderPnL, leaderboard.Day, m, delta); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					ops.Add(1)
					continue
				}
				if _, err := lb.Increment(ctx, leaderboard.BoardTraderPnL, m, delta); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if _, err := lb.Rank(ctx, leaderboard.BoardTraderPnL, leaderboard.Day, m); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, err
	}
	return ops.Load(), float64(ops.Load()) / time.Since(start).Seconds(), nil
}

// redisBenchmarkZADD runs redis-benchmark's unpipelined ZADD with clients connections
// over 10 000 random members, and returns its rate.
func redisBenchmarkZADD(ctx context.Context, addr, key string, clients, n int) (float64, string, error) {
	return redisBenchmark(ctx, addr, []string{"-c", strconv.Itoa(clients), "-n", strconv.Itoa(n), "-r", "10000"},
		"ZADD", key, "__rand_int__", "member:__rand_int__")
}
