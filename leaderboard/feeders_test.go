package leaderboard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

type fakeCandles map[string][]market.Candle

func (f fakeCandles) LastCandles(_ context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error) {
	cs := f[string(ex)+":"+string(sym)]
	if len(cs) > n {
		cs = cs[len(cs)-n:]
	}
	return cs, nil
}

func hourly(sym string, start time.Time, opens []string, closeLast string, qv string) []market.Candle {
	var cs []market.Candle
	for i, o := range opens {
		c := market.Candle{Exchange: "binance", Symbol: market.Symbol(sym), Interval: market.Interval1h,
			OpenTime: start.Add(time.Duration(i) * time.Hour), Open: d(o), High: d(o), Low: d(o), Close: d(o),
			QuoteVolume: d(qv), Closed: true}
		cs = append(cs, c)
	}
	cs[len(cs)-1].Close = d(closeLast)
	return cs
}

func TestMoversFeeder(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{})
	start := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
	opens := make([]string, 26) // 26 hours: the first two fall outside the 24 h span
	for i := range opens {
		opens[i] = "100"
	}
	opens[0], opens[1], opens[2] = "1", "1", "200"
	candles := fakeCandles{
		"binance:BTC-USDT": hourly("BTC-USDT", start, opens, "250", "1000.5"),  // 200 → 250: +25%
		"binance:ETH-USDT": hourly("ETH-USDT", start, opens, "100", "10"),      // 200 → 100: -50%
		"binance:SOL-USDT": hourly("SOL-USDT", start, opens, "200.002", "0.1"), // +0.001%
	}
	// A forming candle after the closed one must not count.
	forming := candles["binance:BTC-USDT"][25]
	forming.OpenTime, forming.Closed, forming.QuoteVolume = forming.OpenTime.Add(time.Hour), false, d("999999")
	candles["binance:BTC-USDT"] = append(candles["binance:BTC-USDT"], forming)

	f := NewMoversFeeder(s, candles, MoversConfig{})
	for _, key := range []string{"binance:BTC-USDT", "binance:ETH-USDT", "binance:SOL-USDT"} {
		cs := candles[key]
		last := cs[25]
		if err := f.CandleClosed(ctx, last); err != nil {
			t.Fatal(err)
		}
		m := last
		m.Interval = market.Interval1m
		if err := f.CandleClosed(ctx, m); err != nil { // other intervals are ignored
			t.Fatal(err)
		}
	}
	top := func(board string) []line {
		es, err := s.Top(ctx, board, AllTime, 5)
		if err != nil {
			t.Fatal(err)
		}
		return lines(es)
	}
	if diff := cmp.Diff([]line{{"binance:BTC-USDT", "25", 1}, {"binance:SOL-USDT", "0.001", 2}, {"binance:ETH-USDT", "-50", 3}}, top(BoardGainers)); diff != "" {
		t.Errorf("gainers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]line{{"binance:ETH-USDT", "-50", 1}, {"binance:SOL-USDT", "0.001", 2}, {"binance:BTC-USDT", "25", 3}}, top(BoardLosers)); diff != "" {
		t.Errorf("losers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]line{{"binance:BTC-USDT", "24012", 1}, {"binance:ETH-USDT", "240", 2}, {"binance:SOL-USDT", "2.4", 3}}, top(BoardVolume)); diff != "" {
		t.Errorf("volume (-want +got):\n%s", diff)
	}
}

func TestStrategyTracker(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{})
	tr := NewStrategyTracker(s, StrategyConfig{})
	t0 := time.Date(2026, 1, 7, 0, 0, 0, 0, time.UTC)
	type sig struct {
		strategy, sym string
		side          market.Side
		price         string
		min           int
		closed        bool
	}
	for i, g := range []sig{
		{"macd", "BTC-USDT", market.Buy, "100", 0, false},
		{"macd", "BTC-USDT", market.Buy, "105", 1, false},  // already long: ignored
		{"macd", "BTC-USDT", market.Sell, "110", 2, true},  // long 100 → 110: +10%
		{"macd", "BTC-USDT", market.Sell, "110", 2, false}, // replay: ignored
		{"macd", "ETH-USDT", market.Sell, "50", 3, false},  // short
		{"macd", "ETH-USDT", market.Buy, "55", 4, true},    // short 50 → 55: -10%
		{"rsi", "BTC-USDT", market.Sell, "200", 0, false},
		{"rsi", "BTC-USDT", market.Buy, "150", 5, true}, // short 200 → 150: +25%
	} {
		closed, err := tr.RecordSignal(ctx, g.strategy, "binance", market.Symbol(g.sym), g.side, d(g.price), t0.Add(time.Duration(g.min)*time.Minute))
		if err != nil || closed != g.closed {
			t.Fatalf("signal %d: closed %v %v, want %v", i, closed, err, g.closed)
		}
	}
	st, err := tr.Stats(ctx, "macd")
	if err != nil || st.Trades != 2 || st.Wins != 1 || st.Return.String() != "-1" || st.WinRate.String() != "50" {
		t.Errorf("macd stats %+v %v; want 2 trades, 1 win, 1.1*0.9-1 = -1%%, 50%%", st, err)
	}
	ret, _ := s.Top(ctx, BoardStrategyReturn, AllTime, 5)
	if diff := cmp.Diff([]line{{"rsi", "25", 1}, {"macd", "-1", 2}}, lines(ret)); diff != "" {
		t.Errorf("return board (-want +got):\n%s", diff)
	}
	wr, _ := s.Top(ctx, BoardStrategyWinRate, AllTime, 5)
	if diff := cmp.Diff([]line{{"rsi", "100", 1}, {"macd", "50", 2}}, lines(wr)); diff != "" {
		t.Errorf("win rate board (-want +got):\n%s", diff)
	}
	for _, bad := range []func() error{
		func() error {
			_, err := tr.RecordSignal(ctx, "x", "binance", "BTC-USDT", market.SideUnknown, d("1"), t0)
			return err
		},
		func() error {
			_, err := tr.RecordSignal(ctx, "x", "binance", "BTC-USDT", market.Buy, decimal.Zero, t0)
			return err
		},
		func() error {
			_, err := tr.RecordSignal(ctx, "a{b}", "binance", "BTC-USDT", market.Buy, d("1"), t0)
			return err
		},
	} {
		if err := bad(); !errors.Is(err, ErrInvalidSignal) {
			t.Errorf("bad signal: %v", err)
		}
	}
}
