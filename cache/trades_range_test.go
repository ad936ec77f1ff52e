package cache_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
)

// TradesBetween returns the trades of [from, to) by exchange time, oldest first, with
// sub-millisecond times at the edges decided exactly, and honours limit.
func TestTradesBetween(t *testing.T) {
	s, _ := newStore(t, cache.MarketConfig{})
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	var b cache.Batch
	for i := 0; i < 10; i++ {
		b.Trades = append(b.Trades, market.Trade{Exchange: market.Coinbase, Symbol: "BTC-USD", ID: strconv.Itoa(100 + i),
			Price: decimal.NewFromInt(int64(10 + i)), Qty: decimal.New(1, -3), Side: market.Buy,
			Time: base.Add(time.Duration(i)*time.Second + 500*time.Microsecond)})
	}
	if _, err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	got, err := s.TradesBetween(ctx, market.Coinbase, "BTC-USD", base.Add(2*time.Second+time.Millisecond/2), base.Add(5*time.Second+time.Millisecond/2), 100)
	if err != nil {
		t.Fatal(err)
	}
	// Trade 5 sits at exactly the end (exclusive); trade 2 exactly at the start.
	if len(got) != 3 || got[0].ID != "102" || got[2].ID != "104" || !got[1].Price.Equal(decimal.NewFromInt(13)) || !got[0].Time.Equal(b.Trades[2].Time) {
		t.Fatalf("got %+v", got)
	}
	got, err = s.TradesBetween(ctx, market.Coinbase, "BTC-USD", base, base.Add(time.Minute), 4)
	if err != nil || len(got) != 4 || got[3].ID != "103" {
		t.Fatalf("limit 4: %+v %v", got, err)
	}
	if got, err := s.TradesBetween(ctx, market.Coinbase, "ETH-USD", base, base.Add(time.Minute), 4); err != nil || len(got) != 0 {
		t.Fatalf("unknown market: %+v %v", got, err)
	}
	if _, err := s.TradesBetween(ctx, market.Coinbase, "BTC-USD", base, base.Add(time.Minute), 0); err == nil {
		t.Fatal("limit 0: no error")
	}
}
