package leaderboard

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/shopspring/decimal"
)

// BenchmarkIncrementRank measures the hot path of a trader board: an exact increment of
// all four windows of traders.pnl, then the member's rank in today's window, from many
// goroutines over 10 000 members. "one-call" is IncrementAndRank; "two-calls" is
// Increment then Rank.
func BenchmarkIncrementRank(b *testing.B) {
	ctx := context.Background()
	s, _, _ := newStore(b, Config{})
	const members = 10_000
	for _, c := range []struct {
		name string
		one  bool
	}{{"one-call", true}, {"two-calls", false}} {
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
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
