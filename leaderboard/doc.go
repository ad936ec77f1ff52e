// Package leaderboard keeps ranked boards in Redis sorted sets: top movers, volume
// leaders, strategy performance and trader PnL, with all-time, day, week and month
// windows (UTC).
//
// Values are exact decimals. The sorted-set score is the value's float64 (correctly
// rounded, so it never misorders two values), and Redis breaks equal scores by member,
// which starts with an order-preserving encoding of the exact value and then the arrival
// number: values that collide in float64 (beyond 2^53, or with many decimals) still rank
// exactly, and equal values rank by who reached them first. The exact decimal is also
// kept beside the sorted set in a hash, and reads give it back digit for digit.
//
// Every write goes, in one script, to the current period of each of the board's windows.
// An increment is one script too: it adds the delta to each window's value in Lua, digit
// by digit on the encodings (decimal.lua), so it stays exact without a read round trip or
// a compare-and-set, and concurrent increments never conflict. Scores are computed there
// as well, so one function (the server's correctly rounded strtod) makes every score.
// IncrementAndRank also returns the member's rank in one window, in the same script.
// Concurrent writes to one board share script calls (group commit, batch.go): the
// script applies a call's writes in order, each exactly as if it ran alone, and a lone
// write is sent at once.
// Week and month are written directly rather than summed from day buckets with
// ZUNIONSTORE, which adds float64 scores and would lose the exactness. Period keys expire
// at period end plus a retention; all-time keys carry a TTL refreshed by writes; every
// window is capped at a member count.
//
// The main calls:
//
//	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{}, reg)
//	_, err = lb.Increment(ctx, leaderboard.BoardTraderPnL, "user-42", decimal.RequireFromString("12.5"))
//	top, err := lb.Top(ctx, leaderboard.BoardTraderPnL, leaderboard.Day, 10)
//	me, err := lb.Rank(ctx, leaderboard.BoardTraderPnL, leaderboard.Week, "user-42")
//	me, err = lb.IncrementAndRank(ctx, leaderboard.BoardTraderPnL, leaderboard.Day, "user-42", delta)
//
// The pipeline feeds the built-in boards through NewMoversFeeder (an ingest.CandleSink)
// and NewStrategyTracker (RecordSignal per trading signal).
package leaderboard
