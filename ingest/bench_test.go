package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

func syntheticTrades(b *testing.B, n int) []market.Trade {
	b.Helper()
	src, err := ingest.NewSynthetic(ingest.SyntheticConfig{Symbols: 16, Rate: 20000, MaxSpeed: true, Start: t0, Limit: int64(n)})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan ingest.Event, n)
	if err := src.Run(context.Background(), out); err != nil {
		b.Fatal(err)
	}
	close(out)
	trades := make([]market.Trade, 0, n)
	for ev := range out {
		trades = append(trades, *ev.Trade())
	}
	return trades
}

// BenchmarkAggregatorAdd measures folding one trade into 1m, 5m and 1h candles.
func BenchmarkAggregatorAdd(b *testing.B) {
	trades := syntheticTrades(b, 100_000)
	agg := ingest.NewAggregator(ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}})
	var closed []market.Candle
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := &trades[i%len(trades)]
		if i%len(trades) == 0 && i > 0 {
			agg = ingest.NewAggregator(ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}})
		}
		closed, _ = agg.Add(t, closed[:0])
	}
}

// BenchmarkIngestToRedis measures the full write path, synthetic source → aggregation →
// the real Redis, in trades per second (see also `tickstash bench ingest`).
func BenchmarkIngestToRedis(b *testing.B) {
	rdb := redistest.Client(b)
	prefix := redistest.Prefix(b, rdb)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	src, err := ingest.NewSynthetic(ingest.SyntheticConfig{Symbols: 16, Rate: 20000, MaxSpeed: true,
		Start: time.Now().Add(-time.Duration(b.N) * 50 * time.Microsecond), Limit: int64(b.N)})
	if err != nil {
		b.Fatal(err)
	}
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	g := ingest.NewIngester(store, nil, []ingest.Source{src}, ingest.IngesterConfig{
		Aggregator:         ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}},
		EventTimeWatermark: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "trades/s")
}
