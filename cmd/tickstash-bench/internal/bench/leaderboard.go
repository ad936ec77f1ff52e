package bench

import (
	"context"
	"fmt"
	"io"
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
	// Duration of each case (Increment + Rank, IncrementAndRank, and about as long for
	// redis-benchmark), split into Rounds interleaved rounds; 0 means 3 seconds.
	Duration time.Duration
	// Rounds of the cases, run in turn; 0 means 5.
	Rounds int
	// Goroutines calling concurrently (and redis-benchmark clients); 0 means 32.
	Goroutines int
	// Members on the board; 0 means 10 000.
	Members int
	// RedisAddr is host:port for redis-benchmark; "" skips the reference run.
	RedisAddr string
}

// LeaderboardReport is the outcome of Leaderboard.
type LeaderboardReport struct {
	Machine Machine
	Config  LeaderboardConfig
	// Per round: Increment + Rank pairs per second (two calls), IncrementAndRank calls
	// per second (the same work in one call), and redis-benchmark's ZADD/s (empty when
	// the reference did not run).
	OpsPerS, OneCallPerS, RawZADDPerS []float64
	RawCommand                        string
	Increments                        int64 // Increment + Rank pairs done; IncrementAndRank calls are not counted
	WindowsPerOp                      int
}

// ratios returns each round's x ÷ raw ZADD/s.
func (r LeaderboardReport) ratios(x []float64) []float64 {
	out := make([]float64, 0, len(x))
	for i := range min(len(x), len(r.RawZADDPerS)) {
		if r.RawZADDPerS[i] > 0 {
			out = append(out, x[i]/r.RawZADDPerS[i])
		}
	}
	return out
}

// OneCallRatio returns the median, least and greatest round ratio of IncrementAndRank to
// raw ZADD (all 0 without the reference).
func (r LeaderboardReport) OneCallRatio() (med, lo, hi float64) {
	return medianSpread(r.ratios(r.OneCallPerS))
}

// Markdown renders the report.
func (r LeaderboardReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### bench leaderboard\n\n%s\n\n%d goroutines, %d members, %v per case in %d interleaved rounds; median (least–greatest) of the rounds.\n\n",
		r.Machine.Markdown(), r.Config.Goroutines, r.Config.Members, r.Config.Duration, r.Config.Rounds)
	b.WriteString("| what | rate | note |\n|---|---|---|\n")
	rate := func(x []float64) string {
		m, lo, hi := medianSpread(x)
		return fmt.Sprintf("%.0f (%.0f–%.0f)", m, lo, hi)
	}
	fmt.Fprintf(&b, "| tickstash leaderboard: Increment (exact, %d windows) + Rank | %s pairs/s | 2 round trips |\n", r.WindowsPerOp, rate(r.OpsPerS))
	fmt.Fprintf(&b, "| tickstash leaderboard: IncrementAndRank (the same, one call) | %s pairs/s | 1 round trip, one script |\n", rate(r.OneCallPerS))
	if len(r.RawZADDPerS) > 0 {
		fmt.Fprintf(&b, "| raw ZADD (`%s`) | %s ZADD/s | reference, unpipelined |\n", r.RawCommand, rate(r.RawZADDPerS))
		tm, tl, th := medianSpread(r.ratios(r.OpsPerS))
		om, ol, oh := r.OneCallRatio()
		met := "no"
		if om >= 0.3 {
			met = "yes"
		}
		fmt.Fprintf(&b, "\n| ratio to raw ZADD, per round | median | least–greatest |\n|---|---:|---:|\n")
		fmt.Fprintf(&b, "| Increment + Rank | %.2f | %.2f–%.2f |\n", tm, tl, th)
		fmt.Fprintf(&b, "| IncrementAndRank (target ≥ 0.3: %s) | %.2f | %.2f–%.2f |\n", met, om, ol, oh)
	}
	return b.String()
}

// Leaderboard runs Increment followed by Rank on the traders.pnl board (all four
// windows) from many goroutines under a key prefix of its own (deleted afterwards), then
// the same as one IncrementAndRank call, then redis-benchmark's ZADD with as many clients
// on the same server, in cfg.Rounds rounds.
func Leaderboard(ctx context.Context, rdb redis.UniversalClient, cfg LeaderboardConfig, progress io.Writer) (LeaderboardReport, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 32
	}
	if cfg.Members <= 0 {
		cfg.Members = 10_000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	rep := LeaderboardReport{Machine: DescribeMachine(ctx, rdb), Config: cfg, WindowsPerOp: 4}
	prefix := randomPrefix("tsbench")
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, prefix+"*") }()
	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{Prefix: prefix}, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	per := cfg.Duration / time.Duration(cfg.Rounds)
	for round := range cfg.Rounds {
		n, two, err := leaderboardRun(ctx, lb, cfg, per, false)
		if err != nil {
			return rep, err
		}
		rep.Increments += n
		_, one, err := leaderboardRun(ctx, lb, cfg, per, true)
		if err != nil {
			return rep, err
		}
		rep.OpsPerS, rep.OneCallPerS = append(rep.OpsPerS, two), append(rep.OneCallPerS, one)
		line := fmt.Sprintf("round %d/%d: Increment+Rank %.0f/s, IncrementAndRank %.0f/s", round+1, cfg.Rounds, two, one)
		if cfg.RedisAddr != "" {
			// About as long as a tickstash case: ZADD runs some 7x faster.
			n := int(8*max(two, one)*per.Seconds()) + 5_000
			raw, cmd, err := redisBenchmarkZADD(ctx, cfg.RedisAddr, prefix+":zadd", cfg.Goroutines, n)
			if err != nil {
				return rep, err
			}
			rep.RawZADDPerS, rep.RawCommand = append(rep.RawZADDPerS, raw), cmd
			line += fmt.Sprintf(", raw ZADD %.0f/s, ratio %.2f", raw, one/raw)
		}
		if progress != nil {
			fmt.Fprintln(progress, line)
		}
	}
	return rep, nil
}

// leaderboardRun calls Increment then Rank (or IncrementAndRank when one) from
// cfg.Goroutines goroutines for d and returns the pairs done and their rate.
func leaderboardRun(ctx context.Context, lb *leaderboard.Store, cfg LeaderboardConfig, d time.Duration, one bool) (int64, float64, error) {
	var ops atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
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
