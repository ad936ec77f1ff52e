package ingest_test

import (
	"context"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

func TestEventCarriesOneRecordByReference(t *testing.T) {
	if n := unsafe.Sizeof(ingest.Event{}); n > 160 {
		t.Errorf("an Event is %d bytes; want a trade and a pointer at most", n)
	}
	tr := market.Trade{Exchange: market.Coinbase, Symbol: "BTC-USD", ID: "1", Price: dec("1"), Qty: dec("2"), Side: market.Sell, Time: t0}
	ev, err := ingest.NewTradeEvent(tr)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind() != ingest.KindTrade || ev.Quote() != nil || ev.Candle() != nil || ev.Gap() != nil || *ev.Trade() != tr {
		t.Fatalf("trade event: kind %v, trade %+v", ev.Kind(), ev.Trade())
	}
	tr.ID = "changed"
	if ev.Trade().ID != "1" {
		t.Error("the event shares the caller's trade: a later change reached it")
	}
	q := market.Quote{Exchange: market.Coinbase, Symbol: "BTC-USD", Bid: dec("1"), Ask: dec("2"), Time: t0}
	if ev, err := ingest.NewQuoteEvent(q); err != nil || ev.Kind() != ingest.KindQuote || *ev.Quote() != q || ev.Trade() != nil {
		t.Fatalf("quote event: %v, %v", ev.Kind(), err)
	}
	g := ingest.Gap{Exchange: market.Coinbase, Symbol: "BTC-USD", FromID: "2", ToID: "4", Missing: 3}
	if ev := ingest.NewGapEvent(g); ev.Kind() != ingest.KindGap || *ev.Gap() != g {
		t.Fatalf("gap event: %v", ev.Kind())
	}
	var zero ingest.Event
	if zero.Kind() != 0 || zero.Trade() != nil || zero.Kind().String() != "unknown" {
		t.Fatalf("zero event: kind %v", zero.Kind())
	}
	bad := tr
	bad.Qty = dec("0")
	if _, err := ingest.NewTradeEvent(bad); err == nil {
		t.Fatal("NewTradeEvent took a trade of quantity 0")
	}
	badCandle := market.Candle{Exchange: market.Coinbase, Symbol: "BTC-USD", Interval: market.Interval1m, OpenTime: t0.Add(time.Second),
		Open: dec("1"), High: dec("1"), Low: dec("1"), Close: dec("1")}
	if _, err := ingest.NewCandleEvent(badCandle); err == nil {
		t.Fatal("NewCandleEvent took a candle not aligned to its interval")
	}
}

// recordingStore keeps a copy of what it is given (the ingester reuses batches).
type recordingStore struct{ batches []cache.Batch }

func (s *recordingStore) Write(_ context.Context, b *cache.Batch) (cache.WriteStats, error) {
	s.batches = append(s.batches, cache.Batch{Trades: slices.Clone(b.Trades), Quotes: slices.Clone(b.Quotes), Candles: slices.Clone(b.Candles)})
	return cache.WriteStats{}, nil
}

type eventsSource []ingest.Event

func (eventsSource) Name() string { return "events" }

func (s eventsSource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for _, ev := range s {
		out <- ev
	}
	return nil
}

// TestIngesterDropsTheZeroEvent: the only event that can reach the ingester without
// having been validated is the zero Event; it is dropped and counted.
func TestIngesterDropsTheZeroEvent(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := &recordingStore{}
	tr := tradeEvent(market.Trade{Exchange: market.Coinbase, Symbol: "BTC-USD", ID: "1", Price: dec("1"), Qty: dec("2"), Side: market.Sell, Time: t0})
	g := ingest.NewIngester(store, nil, []ingest.Source{eventsSource{{}, tr, {}}}, ingest.IngesterConfig{Writers: 1, NoFormingCandles: true}, quiet(), reg)
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var trades int
	for _, b := range store.batches {
		trades += len(b.Trades)
	}
	if trades != 1 {
		t.Errorf("%d trades written, want 1", trades)
	}
	if n := testutil.ToFloat64(ingest.InvalidEvents(reg).WithLabelValues("unknown")); n != 2 {
		t.Errorf("invalid events {kind=unknown} = %v, want 2", n)
	}
}
