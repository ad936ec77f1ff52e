package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func tr(sym market.Symbol, at time.Duration, price, qty string) market.Trade {
	return market.Trade{Exchange: market.Coinbase, Symbol: sym, Price: dec(price), Qty: dec(qty), Side: market.Buy, Time: t0.Add(at)}
}

// summary is a compact, comparable form of a candle for test tables.
type summary struct {
	Sym        market.Symbol
	IV         string
	Open       string // open time offset from t0
	O, H, L, C string
	V, QV      string
	N          int64
	Closed     bool
}

func summarize(cs []market.Candle) []summary {
	out := make([]summary, len(cs))
	for i, c := range cs {
		out[i] = summary{c.Symbol, c.Interval.String(), c.OpenTime.Sub(t0).String(),
			c.Open.String(), c.High.String(), c.Low.String(), c.Close.String(),
			c.Volume.String(), c.QuoteVolume.String(), c.Trades, c.Closed}
	}
	return out
}

func feed(a *Aggregator, trades ...market.Trade) (closed []market.Candle, late int) {
	for i := range trades {
		var n int
		closed, n = a.Add(&trades[i], closed)
		late += n
	}
	return closed, late
}

func TestAggregatorBoundaries(t *testing.T) {
	a := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m}})
	closed, late := feed(a,
		tr("BTC-USD", 0, "100", "1"),
		tr("BTC-USD", 59*time.Second+999999999, "101", "1"), // last nanosecond of the first minute
		tr("BTC-USD", time.Minute, "102", "1"),              // first instant of the second
	)
	want := []summary{{"BTC-USD", "1m", "0s", "100", "101", "100", "101", "2", "201", 2, true}}
	if diff := cmp.Diff(want, summarize(closed)); diff != "" || late != 0 {
		t.Errorf("closed (-want +got):\n%s late=%d", diff, late)
	}
	forming := a.Forming(nil)
	if diff := cmp.Diff([]summary{{"BTC-USD", "1m", "1m0s", "102", "102", "102", "102", "1", "102", 1, false}}, summarize(forming)); diff != "" {
		t.Errorf("forming (-want +got):\n%s", diff)
	}
	if again := a.Forming(nil); len(again) != 0 {
		t.Errorf("Forming returned %d unchanged candles", len(again))
	}
}

func TestAggregatorLateTrades(t *testing.T) {
	a := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval1h}})
	closed, late := feed(a,
		tr("BTC-USD", 10*time.Second, "100", "1"),
		tr("BTC-USD", 70*time.Second, "101", "1"), // closes 00:00 (1m)
		tr("BTC-USD", 30*time.Second, "90", "5"),  // late for 1m, still fine for 1h
	)
	if late != 1 || a.Stats().Late[0] != 1 || a.Stats().Late[1] != 0 {
		t.Errorf("late = %d, stats %+v; want 1 late on 1m only", late, a.Stats())
	}
	if len(closed) != 1 || !closed[0].Low.Equal(dec("100")) {
		t.Errorf("the closed 1m candle changed after closing: %+v", summarize(closed))
	}
	all := a.Flush(nil)
	want := []summary{
		{"BTC-USD", "1m", "1m0s", "101", "101", "101", "101", "1", "101", 1, true},
		{"BTC-USD", "1h", "0s", "100", "101", "90", "90", "7", "651", 3, true},
	}
	if diff := cmp.Diff(want, summarize(all)); diff != "" {
		t.Errorf("flushed (-want +got):\n%s", diff)
	}
}

func TestAggregatorWatermark(t *testing.T) {
	a := NewAggregator(AggregatorConfig{Grace: 2 * time.Second})
	feed(a, tr("ETH-USD", 5*time.Second, "10", "1"))
	if got := a.Advance(t0.Add(61*time.Second), nil); len(got) != 0 {
		t.Fatalf("closed within the grace period: %v", summarize(got))
	}
	got := a.Advance(t0.Add(62*time.Second), nil)
	if len(got) != 1 || !got[0].Closed || !got[0].OpenTime.Equal(t0) {
		t.Fatalf("watermark past end+grace: closed %v", summarize(got))
	}
	// A trade of the closed bucket arriving now is late; one of the next bucket opens it.
	closed, late := feed(a, tr("ETH-USD", 59*time.Second, "11", "1"), tr("ETH-USD", 61*time.Second, "12", "1"))
	if late != 1 || len(closed) != 0 {
		t.Errorf("after watermark close: late=%d closed=%v", late, summarize(closed))
	}
	if f := a.Forming(nil); len(f) != 1 || !f[0].OpenTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("forming = %v", summarize(f))
	}
}

func TestAggregatorEmptyIntervals(t *testing.T) {
	trades := []market.Trade{tr("BTC-USD", 10*time.Second, "100", "1"), tr("BTC-USD", 190*time.Second, "104", "1")}
	t.Run("skip", func(t *testing.T) {
		a := NewAggregator(AggregatorConfig{Empty: EmptySkip})
		closed, _ := feed(a, trades...)
		if diff := cmp.Diff([]summary{{"BTC-USD", "1m", "0s", "100", "100", "100", "100", "1", "100", 1, true}}, summarize(closed)); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("flat", func(t *testing.T) {
		a := NewAggregator(AggregatorConfig{Empty: EmptyFlat})
		closed, _ := feed(a, trades...)
		want := []summary{
			{"BTC-USD", "1m", "0s", "100", "100", "100", "100", "1", "100", 1, true},
			{"BTC-USD", "1m", "1m0s", "100", "100", "100", "100", "0", "0", 0, true},
			{"BTC-USD", "1m", "2m0s", "100", "100", "100", "100", "0", "0", 0, true},
		}
		if diff := cmp.Diff(want, summarize(closed)); diff != "" {
			t.Error(diff)
		}
		// The watermark carries a quiet market flat too.
		got := a.Advance(t0.Add(6*time.Minute+2*time.Second), nil)
		want = []summary{
			{"BTC-USD", "1m", "3m0s", "104", "104", "104", "104", "1", "104", 1, true},
			{"BTC-USD", "1m", "4m0s", "104", "104", "104", "104", "0", "0", 0, true},
			{"BTC-USD", "1m", "5m0s", "104", "104", "104", "104", "0", "0", 0, true},
		}
		if diff := cmp.Diff(want, summarize(got)); diff != "" {
			t.Errorf("watermark flat (-want +got):\n%s", diff)
		}
	})
	t.Run("flat gap capped", func(t *testing.T) {
		a := NewAggregator(AggregatorConfig{Empty: EmptyFlat, MaxFlat: 3})
		closed, _ := feed(a, tr("BTC-USD", 0, "1", "1"), tr("BTC-USD", 10*time.Minute, "2", "1"))
		if len(closed) != 4 || a.Stats().FlatSkipped[0] != 6 || !closed[1].OpenTime.Equal(t0.Add(7*time.Minute)) {
			t.Errorf("closed %v, skipped %d; want the candle + 3 flat (7m..9m), 6 skipped", summarize(closed), a.Stats().FlatSkipped[0])
		}
	})
}

func TestAggregatorExactSums(t *testing.T) {
	a := NewAggregator(AggregatorConfig{})
	var trades []market.Trade
	// 0.1 + 0.2 + ... must be exact; float64 would give 0.30000000000000004 and worse.
	for i := 0; i < 1000; i++ {
		trades = append(trades, tr("BTC-USD", time.Duration(i)*time.Millisecond, "0.1", "0.1"), tr("BTC-USD", time.Duration(i)*time.Millisecond, "0.2", "0.2"))
	}
	feed(a, trades...)
	got := a.Flush(nil)
	if len(got) != 1 {
		t.Fatalf("got %d candles", len(got))
	}
	c := got[0]
	if c.Volume.String() != "300" || c.QuoteVolume.String() != "50" || c.Trades != 2000 {
		t.Errorf("volume %s quote volume %s trades %d; want 300, 50, 2000", c.Volume, c.QuoteVolume, c.Trades)
	}
	if v := c.VWAP(); v.String() != "0.166666666666666667" {
		t.Errorf("vwap %s", v)
	}
}

func TestAggregatorManySymbolsStableOrder(t *testing.T) {
	a := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m}})
	for i := 9; i >= 0; i-- {
		feed(a, tr(market.Symbol(fmt.Sprintf("S%d-USD", i)), time.Duration(i)*time.Second, "1", "1"))
	}
	got := a.Flush(nil)
	if len(got) != 20 {
		t.Fatalf("flushed %d candles, want 20", len(got))
	}
	for i := 1; i < len(got); i++ {
		p, c := got[i-1], got[i]
		if p.Symbol > c.Symbol || (p.Symbol == c.Symbol && p.Interval >= c.Interval) {
			t.Fatalf("flush order broken at %d: %s/%s then %s/%s", i, p.Symbol, p.Interval, c.Symbol, c.Interval)
		}
	}
}

func TestAggregatorSkipsRepeatedTradeIDs(t *testing.T) {
	a := NewAggregator(AggregatorConfig{})
	mk := func(id string, at time.Duration, price string) market.Trade {
		tr := tr("BTC-USD", at, price, "1")
		tr.ID = id
		return tr
	}
	feed(a, mk("10", time.Second, "100"), mk("11", 2*time.Second, "101"), mk("11", 2*time.Second, "101"), mk("9", 3*time.Second, "50"), mk("x", 4*time.Second, "102"))
	got := a.Flush(nil)
	if len(got) != 1 || got[0].Trades != 3 || !got[0].Low.Equal(dec("100")) || a.Stats().Repeats != 2 {
		t.Errorf("candle %v, repeats %d; want 3 trades (ids 10, 11 and the non-numeric x), 2 repeats", summarize(got), a.Stats().Repeats)
	}
}

func TestAggregatorResume(t *testing.T) {
	// A previous run stored a forming 1m candle and a closed 1h one.
	first := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval1h}})
	trades := []market.Trade{tr("ETH-USD", 10*time.Second, "10", "1"), tr("ETH-USD", 20*time.Second, "12", "1")}
	trades[0].ID, trades[1].ID = "1", "2"
	feed(first, trades...)
	stored := first.Forming(nil)

	b := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval1h}})
	b.Resume(market.Coinbase, "ETH-USD", "2", stored)
	if !b.Known(market.Coinbase, "ETH-USD") {
		t.Fatal("resumed market unknown")
	}
	again := tr("ETH-USD", 20*time.Second, "12", "1") // the overlap of a replay
	again.ID = "2"
	next := tr("ETH-USD", 30*time.Second, "9", "2")
	next.ID = "3"
	feed(b, again, next)
	got := b.Flush(nil)
	want := []summary{
		{"ETH-USD", "1m", "0s", "10", "12", "9", "9", "4", "40", 3, true},
		{"ETH-USD", "1h", "0s", "10", "12", "9", "9", "4", "40", 3, true},
	}
	if diff := cmp.Diff(want, summarize(got)); diff != "" {
		t.Errorf("resumed candles (-want +got):\n%s", diff)
	}

	// A closed stored candle makes its bucket's trades late.
	c := NewAggregator(AggregatorConfig{})
	closedC := got[0]
	c.Resume(market.Coinbase, "ETH-USD", "", []market.Candle{closedC})
	_, late := feed(c, tr("ETH-USD", 59*time.Second, "10", "1"))
	if late != 1 {
		t.Errorf("trade into a resumed closed candle: late = %d, want 1", late)
	}
}
