package ingest_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// discardStore takes batches without Redis, so the pipeline's own cost is measured.
type discardStore struct{ records atomic.Int64 }

func (s *discardStore) Write(_ context.Context, b *cache.Batch) (cache.WriteStats, error) {
	s.records.Add(int64(b.Len()))
	return cache.WriteStats{}, nil
}

// replaySource sends n events built, as a decoder builds them, from a pool of trades
// and quotes (one quote per trade).
type replaySource struct {
	trades []market.Trade
	quotes []market.Quote
	n      int
}

func (replaySource) Name() string { return "bench" }

func (s replaySource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for i := range s.n {
		j := (i / 2) % len(s.trades)
		var ev ingest.Event
		if i%2 == 0 {
			ev = benchTradeEvent(s.trades[j])
		} else {
			ev = benchQuoteEvent(s.quotes[j])
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func benchQuotes(trades []market.Trade) []market.Quote {
	qs := make([]market.Quote, len(trades))
	for i, t := range trades {
		qs[i] = market.Quote{Exchange: t.Exchange, Symbol: t.Symbol, Bid: t.Price, BidQty: t.Qty, Ask: t.Price, AskQty: t.Qty, Time: t.Time, ReceivedAt: t.Time}
	}
	return qs
}

// BenchmarkIngesterPipeline measures one event (half trades, half quotes) from a
// source through the events channel, validation, aggregation (1m, 5m, 1h) and batching
// to a store that discards: the per-event cost of the ingester itself, without Redis.
func BenchmarkIngesterPipeline(b *testing.B) {
	trades := syntheticTrades(b, 100_000)
	quotes := benchQuotes(trades)
	b.ReportAllocs()
	b.ResetTimer()
	store := &discardStore{}
	g := ingest.NewIngester(store, nil, []ingest.Source{replaySource{trades: trades, quotes: quotes, n: b.N}}, ingest.IngesterConfig{
		Aggregator:         ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}},
		EventTimeWatermark: true, NoResume: true,
	}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err := g.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEventChannel measures handing one event from a producer goroutine to a
// consumer through a buffered channel, as sources hand events to the ingester.
func BenchmarkEventChannel(b *testing.B) {
	trades := syntheticTrades(b, 1024)
	ch := make(chan ingest.Event, 8192)
	done := make(chan int)
	go func() {
		n := 0
		for ev := range ch {
			if benchIsTrade(ev) {
				n++
			}
		}
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ch <- benchTradeEvent(trades[i%len(trades)])
	}
	close(ch)
	if n := <-done; n != b.N {
		b.Fatalf("%d trades received, want %d", n, b.N)
	}
}
