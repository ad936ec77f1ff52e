package history_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// The wiring of `tickstash backfill`: one Venue per exchange, one Backfiller, a Job per
// interval. Ctrl-C cancels ctx; the same command run again resumes.
func ExampleBackfiller() {
	ctx := context.Background()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	reg := prometheus.NewRegistry()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, reg)
	m := history.NewMetrics(reg)
	v, err := history.NewVenue("binance", history.VenueConfig{Log: slog.Default()}, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	bf := history.NewBackfiller(store, rdb, m, history.BackfillConfig{Log: slog.Default()})
	to := time.Now()
	res, err := bf.Run(ctx, history.Job{Venue: v, Symbol: "BTC-USDT", Interval: market.Interval1m,
		From: to.Add(-24 * time.Hour), To: to,
		Progress: func(p history.Progress) { fmt.Printf("\r%d/%d eta %s", p.Done, p.Total, p.ETA.Round(time.Second)) }})
	fmt.Println(res, err)
}

// The wiring of ingest's gap hook: on an ingest.Gap event, repair in a goroutine of its
// own (it waits for the gap's buckets to close).
func ExampleRepairer_Repair() {
	ctx := context.Background()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	reg := prometheus.NewRegistry()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, reg)
	m := history.NewMetrics(reg)
	var venues []history.Venue
	for _, name := range []string{"binance", "coinbase-exchange", "kraken"} {
		v, _ := history.NewVenue(name, history.VenueConfig{}, m)
		venues = append(venues, v)
	}
	rp := history.NewRepairer(venues, store, m, history.RepairConfig{Grace: 2 * time.Minute})
	var g ingest.Gap         // from an ingest.Event of KindGap
	var lastBefore time.Time // the time of the market's last trade before the gap
	go func() {
		res, err := rp.Repair(ctx, history.Gap{Exchange: g.Exchange, Symbol: g.Symbol, FromID: g.FromID, ToID: g.ToID,
			From: lastBefore, To: g.Time.Add(time.Nanosecond), Detected: time.Now()},
			[]market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}, nil)
		fmt.Println(len(res.Trades), res.Candles, err)
	}()
}
