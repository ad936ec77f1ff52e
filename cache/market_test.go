package cache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newStore(t *testing.T, cfg cache.MarketConfig) (*cache.MarketStore, redis.UniversalClient) {
	t.Helper()
	rdb := redistest.Client(t)
	cfg.Prefix = redistest.Prefix(t, rdb)
	return cache.NewMarketStore(rdb, cfg, prometheus.NewRegistry()), rdb
}

func trade(id int, at time.Time, price, qty string) market.Trade {
	return market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: fmt.Sprint(id),
		Price: d(price), Qty: d(qty), Side: market.Buy, Time: at, ReceivedAt: at.Add(time.Millisecond)}
}

func candle(open time.Time, closePrice string, closed bool) market.Candle {
	return market.Candle{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, OpenTime: open,
		Open: d("100"), High: d("110"), Low: d("90"), Close: d(closePrice), Volume: d("2"), QuoteVolume: d("200"),
		Trades: 2, Closed: closed}
}

func TestWriteIsIdempotent(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, cache.MarketConfig{})
	b := &cache.Batch{
		Trades:  []market.Trade{trade(1, t0, "100", "1"), trade(2, t0, "101", "2"), trade(3, t0.Add(time.Second), "99", "0.5")},
		Quotes:  []market.Quote{{Exchange: market.Binance, Symbol: "BTC-USDT", Bid: d("98"), BidQty: d("1"), Ask: d("99.5"), AskQty: d("3"), Time: t0}},
		Candles: []market.Candle{candle(t0, "99", false)},
	}
	st, err := store.Write(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Trades != 3 || st.Duplicates != 0 || st.Candles != 1 {
		t.Errorf("first write stats = %+v", st)
	}
	dump := func() map[string]string {
		out := map[string]string{}
		keys := store.Keys()
		for _, k := range []string{keys.Trades(market.Binance, "BTC-USDT"), keys.Ticker(market.Binance, "BTC-USDT"),
			keys.Candles(market.Binance, "BTC-USDT", market.Interval1m)} {
			v, err := rdb.Do(ctx, "DUMP", k).Text()
			if err != nil {
				t.Fatalf("DUMP %s: %v", k, err)
			}
			out[k] = v
		}
		return out
	}
	before := dump()
	st, err = store.Write(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Trades != 0 || st.Duplicates != 3 {
		t.Errorf("second write stats = %+v, want 3 duplicates", st)
	}
	after := dump()
	for k := range before {
		if k == store.Keys().Ticker(market.Binance, "BTC-USDT") {
			continue // "updated" is the write time
		}
		if before[k] != after[k] {
			t.Errorf("%s changed on rewrite", k)
		}
	}
	if n := rdb.XLen(ctx, store.Keys().Trades(market.Binance, "BTC-USDT")).Val(); n != 3 {
		t.Errorf("stream length %d, want 3", n)
	}
}

func TestTickerAndRecentTrades(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, cache.MarketConfig{})
	if _, err := store.Ticker(ctx, market.Binance, "BTC-USDT"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("ticker of an empty market: err = %v, want ErrNotFound", err)
	}
	trades := []market.Trade{trade(10, t0, "100.10", "1"), trade(11, t0.Add(1500*time.Microsecond), "100.2", "0.001")}
	trades[1].Side = market.Sell
	q := market.Quote{Exchange: market.Binance, Symbol: "BTC-USDT", Bid: d("100.1"), BidQty: d("2"), Ask: d("100.3"), AskQty: d("1"), Time: t0}
	if _, err := store.Write(ctx, &cache.Batch{Trades: trades, Quotes: []market.Quote{q}}); err != nil {
		t.Fatal(err)
	}
	tk, err := store.Ticker(ctx, market.Binance, "BTC-USDT")
	if err != nil {
		t.Fatal(err)
	}
	if !tk.Last.Equal(d("100.2")) || tk.LastSide != market.Sell || tk.LastTradeID != "11" || !tk.LastTime.Equal(trades[1].Time) ||
		!tk.Bid.Equal(d("100.1")) || !tk.Ask.Equal(d("100.3")) || !tk.AskQty.Equal(d("1")) || !tk.QuoteTime.Equal(t0) {
		t.Errorf("ticker = %+v", tk)
	}
	got, err := store.RecentTrades(ctx, market.Binance, "BTC-USDT", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []market.Trade{trades[1], trades[0]}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("recent trades (-want +got):\n%s", diff)
	}
}

func TestTradeRetentionAndTTL(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, cache.MarketConfig{TradeRetention: time.Minute})
	var trades []market.Trade
	// 500 trades one second apart: only the last minute's may stay (MINID trims whole
	// macro nodes, so a few older ones can linger; the bound is what matters).
	for i := 0; i < 500; i++ {
		trades = append(trades, trade(i+1, t0.Add(time.Duration(i)*time.Second), "100", "1"))
	}
	for i := 0; i < len(trades); i += 50 {
		if _, err := store.Write(ctx, &cache.Batch{Trades: trades[i : i+50]}); err != nil {
			t.Fatal(err)
		}
	}
	key := store.Keys().Trades(market.Binance, "BTC-USDT")
	if n := rdb.XLen(ctx, key).Val(); n < 60 || n > 160 {
		t.Errorf("stream holds %d trades; want about 60 (1 minute at 1/s, trimmed approximately)", n)
	}
	// Exact trimming check: nothing older than the approximate-trim slack survives.
	first, err := rdb.XRangeN(ctx, key, "-", "+", 1).Result()
	if err != nil || len(first) != 1 {
		t.Fatalf("XRANGE: %v", err)
	}
	oldest := trades[len(trades)-1].Time.Add(-time.Minute - 100*time.Second).UnixMilli()
	if first[0].ID < fmt.Sprint(oldest) {
		t.Errorf("oldest entry %s is older than the retention allows (%d)", first[0].ID, oldest)
	}
	for _, k := range []string{key, store.Keys().Ticker(market.Binance, "BTC-USDT"), store.Keys().Markets()} {
		ttl := rdb.PTTL(ctx, k).Val()
		if ttl <= 0 {
			t.Errorf("%s has no TTL (%v)", k, ttl)
		}
	}
}

// TestTradeMaxLenCapsTheStream: with TradeMaxLen, a stream stays near the cap however
// many trades arrive within the retention window.
func TestTradeMaxLenCapsTheStream(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, cache.MarketConfig{TradeRetention: time.Hour, TradeMaxLen: 200})
	var trades []market.Trade
	for i := 0; i < 2000; i++ {
		trades = append(trades, trade(i+1, t0.Add(time.Duration(i)*time.Millisecond), "100", "1"))
	}
	for i := 0; i < len(trades); i += 100 {
		if _, err := store.Write(ctx, &cache.Batch{Trades: trades[i : i+100]}); err != nil {
			t.Fatal(err)
		}
	}
	key := store.Keys().Trades(market.Binance, "BTC-USDT")
	// MAXLEN ~ trims whole macro nodes (100 entries by default), so up to one more node
	// may stay.
	if n := rdb.XLen(ctx, key).Val(); n < 200 || n > 300 {
		t.Errorf("stream holds %d trades; want about 200", n)
	}
	last, err := rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["id"] != "2000" {
		t.Fatalf("newest entry %v (%v): want trade 2000 kept", last, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
		t.Errorf("capped stream has no TTL (%v)", ttl)
	}
}

func TestCandleUpsertRetentionAndLastN(t *testing.T) {
	ctx := context.Background()
	store, rdb := newStore(t, cache.MarketConfig{CandleRetention: map[market.Interval]time.Duration{market.Interval1m: 10 * time.Minute}})
	// 30 minutes of candles, each written forming first and then closed.
	for i := 0; i < 30; i++ {
		open := t0.Add(time.Duration(i) * time.Minute)
		b := &cache.Batch{Candles: []market.Candle{candle(open, "95", false)}}
		if _, err := store.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Candles[0] = candle(open, fmt.Sprint(91+i%10), true)
		if _, err := store.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	key := store.Keys().Candles(market.Binance, "BTC-USDT", market.Interval1m)
	if n := rdb.ZCard(ctx, key).Val(); n != 11 {
		t.Errorf("candle set holds %d; want 11 (10 minutes of retention back from the newest open, inclusive)", n)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 10*time.Minute {
		t.Errorf("candle TTL %v, want (0, 10m]", ttl)
	}
	last, err := store.LastCandles(ctx, market.Binance, "BTC-USDT", market.Interval1m, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []market.Candle{
		candle(t0.Add(27*time.Minute), "98", true),
		candle(t0.Add(28*time.Minute), "99", true),
		candle(t0.Add(29*time.Minute), "100", true),
	}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("last 3 candles (-want +got):\n%s", diff)
	}
	// A stale forming update must not replace a closed candle.
	st, err := store.Write(ctx, &cache.Batch{Candles: []market.Candle{candle(t0.Add(29*time.Minute), "95", false)}})
	if err != nil || st.Candles != 0 {
		t.Errorf("stale forming candle: stats %+v err %v; want it skipped", st, err)
	}
	between, err := store.CandlesBetween(ctx, market.Binance, "BTC-USDT", market.Interval1m, t0.Add(25*time.Minute), t0.Add(27*time.Minute), 100)
	if err != nil || len(between) != 2 || !between[0].OpenTime.Equal(t0.Add(25*time.Minute)) {
		t.Errorf("CandlesBetween = %d candles, %v", len(between), err)
	}
	none, err := store.LastCandles(ctx, market.Binance, "ETH-USDT", market.Interval1m, 3)
	if err != nil || len(none) != 0 {
		t.Errorf("last candles of an unknown market = %v, %v", none, err)
	}
}

func TestMarketsIndex(t *testing.T) {
	ctx := context.Background()
	store, _ := newStore(t, cache.MarketConfig{})
	tr := trade(1, t0, "1", "1")
	tr2 := tr
	tr2.Exchange, tr2.Symbol = market.Coinbase, "ETH-USD"
	if _, err := store.Write(ctx, &cache.Batch{Trades: []market.Trade{tr, tr2}}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Markets(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("Markets = %v, %v", got, err)
	}
}

// TestScriptReload checks that a Redis that lost its scripts (restart, SCRIPT FLUSH) is
// written to after reloading them. It uses an embedded server so that flushing scripts
// does not disturb other tests sharing the real one.
func TestScriptReload(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, prometheus.NewRegistry())
	for i := 0; i < 2; i++ {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := store.Write(ctx, &cache.Batch{Candles: []market.Candle{candle(t0.Add(time.Duration(i)*time.Minute), "99", true)}})
		if err != nil || st.Candles != 1 {
			t.Fatalf("write after SCRIPT FLUSH: %+v %v", st, err)
		}
	}
}

func TestWriteErrorIsCounted(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, reg)
	mr.Close()
	_, err := store.Write(ctx, &cache.Batch{Trades: []market.Trade{trade(1, t0, "1", "1")}})
	if err == nil {
		t.Fatal("write to a stopped Redis succeeded")
	}
	if n := counterValue(t, reg, "tickstash_cache_write_errors_total"); n != 1 {
		t.Errorf("write errors = %v, want 1", n)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
