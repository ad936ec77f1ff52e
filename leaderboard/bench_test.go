package leaderboard

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
)

// BenchmarkIncrementRank measures the hot path of a trader board: an exact increment of
// all four windows of traders.pnl, then the member's rank in today's window, from many
// goroutines over 10 000 members. "one-call" is IncrementAndRank; "two-calls" is
// Increment then Rank. writes/call is how many writes shared a script call on average
// (batch.go).
func BenchmarkIncrementRank(b *testing.B) {
	ctx := context.Background()
	s, rdb, _ := newStore(b, Config{})
	calls := &redistest.ScriptCalls{}
	rdb.AddHook(calls)
	const members = 10_000
	for _, c := range []struct {
		name string
		one  bool
	}{{"one-call", true}, {"two-calls", false}} {
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			calls.N.Store(0)
			if c.one {
				defer func() { b.ReportMetric(float64(b.N)/float64(max(calls.N.Load(), 1)), "writes/call") }()
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					m := "user-" + strconv.FormatInt(i%members, 10)
					delta := decimal.New(i%1000-500, -2)
					if c.one {
						if _, err := s.IncrementAndRank(ctx, BoardTraderPnL, Day, m, delta); err != nil {
							b.Error(err)
							return
						}
						continue
					}
					if _, err := s.Increment(ctx, BoardTraderPnL, m, delta); err != nil {
						b.Error(err)
						return
					}
					if _, err := s.Rank(ctx, BoardTraderPnL, Day, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkIncrementRankServer measures what one IncrementAndRank costs Redis itself, on a
// server of the benchmark's own (its INFO commandstats then count only this work): the
// server-µs/op metric is the script's run time per call, with every command it calls, and
// cmds/op the commands it calls. 10 000 members are on the board first.
func BenchmarkIncrementRankServer(b *testing.B) {
	ctx := context.Background()
	srv := redistest.StartServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s, _, _ := newStoreOn(b, rdb, Config{})
	const members = 10_000
	for i := range members {
		if _, err := s.Increment(ctx, BoardTraderPnL, "user-"+strconv.Itoa(i), decimal.New(int64(i%1000)-500, -2)); err != nil {
			b.Fatal(err)
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		m := "user-" + strconv.Itoa(i%members)
		if _, err := s.IncrementAndRank(ctx, BoardTraderPnL, Day, m, decimal.New(int64(i%1000)-500, -2)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var scriptUS, calls, inner float64
	for _, line := range strings.Split(rdb.Info(ctx, "commandstats").Val(), "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var c, us float64
		for _, kv := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				c, _ = strconv.ParseFloat(v, 64)
			case "usec":
				us, _ = strconv.ParseFloat(v, 64)
			}
		}
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			scriptUS += us
			calls += c
		case "cmdstat_config|resetstat", "cmdstat_script|load", "cmdstat_info":
		default:
			inner += c
		}
	}
	if calls > 0 {
		b.ReportMetric(scriptUS/calls, "server-µs/op")
		b.ReportMetric(inner/calls, "cmds/op")
	}
}
