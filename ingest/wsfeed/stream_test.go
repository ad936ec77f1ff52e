package wsfeed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// fixedDecoder returns the same drafts for every message.
type fixedDecoder struct{ drafts []ingest.Draft }

func (fixedDecoder) Exchange() market.Exchange { return market.Binance }

func (d fixedDecoder) Decode(dst []ingest.Draft, _ []byte, _ time.Time) ([]ingest.Draft, error) {
	return append(dst, d.drafts...), nil
}

// TestStreamValidatesOnce: the stream is where exchange data enters; an invalid trade
// or quote is dropped there and counted both as a decode error ("invalid") and in
// tickstash_ingest_invalid_events_total by kind, and every event it sends is valid.
func TestStreamValidatesOnce(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	good := market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: "1", Price: d("100"), Qty: d("1"), Side: market.Buy, Time: at}
	zeroPrice := good
	zeroPrice.ID, zeroPrice.Price = "2", d("0")
	noTime := good
	noTime.ID, noTime.Time = "3", time.Time{}
	negQuote := market.Quote{Exchange: market.Binance, Symbol: "BTC-USDT", Bid: d("-1"), Ask: d("1"), Time: at}
	badCandle := market.Candle{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, OpenTime: at,
		Open: d("1"), High: d("1"), Low: d("2"), Close: d("1")}
	dec := fixedDecoder{drafts: []ingest.Draft{
		{Kind: ingest.KindTrade, Trade: zeroPrice},
		{Kind: ingest.KindTrade, Trade: good},
		{Kind: ingest.KindTrade, Trade: noTime},
		{Kind: ingest.KindQuote, Quote: negQuote},
		{Kind: ingest.KindCandle, Candle: badCandle},
		{Kind: 0},
	}}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, market.Binance)
	s := NewStream(dec, m, nil)
	out := make(chan ingest.Event, 10)
	if err := s.Handle(context.Background(), []byte("{}"), at, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []ingest.Event
	for ev := range out {
		got = append(got, ev)
	}
	if len(got) != 1 || got[0].Trade() == nil || got[0].Trade().ID != "1" {
		t.Fatalf("sent %d events (%v), want only the valid trade 1", len(got), got)
	}
	invalid := ingest.InvalidEvents(reg) // the same vector, already registered
	for kind, want := range map[string]float64{"trade": 2, "quote": 1, "candle": 1, "unknown": 1} {
		if n := testutil.ToFloat64(invalid.WithLabelValues(kind)); n != want {
			t.Errorf("tickstash_ingest_invalid_events_total{kind=%q} = %v, want %v", kind, n, want)
		}
	}
	if n := testutil.ToFloat64(m.decodeErrors.WithLabelValues("binance", ReasonInvalid)); n != 5 {
		t.Errorf("decode errors {reason=invalid} = %v, want 5", n)
	}
}

func TestDraftEventErrorsWrapMarketErrors(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: "9", Price: decimal.RequireFromString("-1"),
		Qty: decimal.RequireFromString("1"), Side: market.Buy, Time: at}
	d := ingest.Draft{Kind: ingest.KindTrade, Trade: tr}
	if _, err := d.Event(); !errors.Is(err, market.ErrNonPositivePrice) {
		t.Fatalf("Draft.Event() = %v, want ErrNonPositivePrice", err)
	}
	if _, err := ingest.NewTradeEvent(tr); !errors.Is(err, market.ErrNonPositivePrice) {
		t.Fatalf("NewTradeEvent = %v, want ErrNonPositivePrice", err)
	}
}
