package history_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/market"
)

var btcusdt = market.Symbol("BTC-USDT")
var btcusd = market.Symbol("BTC-USD")

// Binance 1m over 30 hours: two pages, a 429 with Retry-After, a 418, a 500, the forming
// minute and Binance's zero-volume candles left out; stored candles equal the candles
// computed from the trades.
func TestBackfillBinanceMatchesTrades(t *testing.T) {
	const minutes = 1800
	trades := genTrades(market.Binance, btcusdt, minutes, 1)
	srv := newExchangeServer(t, trades)
	now := t0.Add(minutes*time.Minute - 30*time.Second) // the last minute is still forming
	e := newEnv(t, now, history.BackfillConfig{})
	v := e.venue(t, "binance", srv.URL)
	srv.failNext("429:3", "418:7", "500")

	var progress []history.Progress
	res, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m,
		From: t0, To: t0.Add(minutes * time.Minute), Progress: func(p history.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := expected(market.Binance, btcusdt, market.Interval1m, naive(trades, time.Minute), t0, t0.Add((minutes-1)*time.Minute), true, true)
	if len(want) < 1000 {
		t.Fatalf("test data too small: %d candles", len(want))
	}
	if diff := cmp.Diff(want, e.stored(t, market.Binance, btcusdt, market.Interval1m), decimalCmp); diff != "" {
		t.Fatalf("stored candles (-want +got):\n%s", diff)
	}
	if res.Stored != len(want) || res.Fetched != len(want) || res.Resumed {
		t.Fatalf("result %+v, want %d stored", res, len(want))
	}
	if got := e.waits.all(); len(got) < 3 || got[0] != 3*time.Second || got[1] != 7*time.Second || got[2] != 500*time.Millisecond {
		t.Fatalf("waits %v, want Retry-After 3s, 7s, then the 0.5s backoff", got)
	}
	for status, n := range map[string]float64{"429": 1, "418": 1, "500": 1, "200": 2} {
		if got := testutil.ToFloat64(e.m.RequestsCounter("binance", status)); got != n {
			t.Errorf("requests{status=%s} = %v, want %v", status, got, n)
		}
	}
	if got := testutil.ToFloat64(e.m.CandlesCounter(market.Binance, market.Interval1m)); got != float64(len(want)) {
		t.Errorf("candles backfilled metric %v, want %d", got, len(want))
	}
	last := progress[len(progress)-1]
	if progress[0].Done != 0 || last.Done != minutes || last.Total != minutes || last.Stored != len(want) {
		t.Fatalf("progress first %+v last %+v", progress[0], last)
	}
}

// Running the same backfill again stores nothing; a live candle already stored wins.
func TestBackfillIdempotentAndKeepsLiveCandles(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 120, 2)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(3*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "binance", srv.URL)
	live := market.NewCandle(&trades[0], market.Interval1m)
	live.Closed = true
	ctx := context.Background()
	if _, err := e.store.Write(ctx, batchOf(live)); err != nil {
		t.Fatal(err)
	}
	job := history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m, From: t0, To: t0.Add(2 * time.Hour)}
	first, err := e.bf.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if first.Present != 1 || first.Stored != first.Fetched-1 {
		t.Fatalf("first run %+v: want the live candle skipped", first)
	}
	before := e.stored(t, market.Binance, btcusdt, market.Interval1m)
	if before[0].Source != "" {
		t.Fatalf("live candle replaced: %+v", before[0])
	}
	second, err := e.bf.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if second.Stored != 0 || second.Present != first.Fetched {
		t.Fatalf("second run %+v, want nothing stored", second)
	}
	if diff := cmp.Diff(before, e.stored(t, market.Binance, btcusdt, market.Interval1m), decimalCmp); diff != "" {
		t.Fatalf("second run changed candles:\n%s", diff)
	}
}

// Cancelled mid-way, the backfill leaves a checkpoint (with a TTL, under the market's
// hash tag); the next run resumes there and ends with the same candles.
func TestBackfillResumesFromCheckpoint(t *testing.T) {
	const minutes = 1500 // five pages of 300 on Coinbase Exchange
	trades := genTrades(market.Coinbase, btcusd, minutes, 3)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(2*24*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "coinbase-exchange", srv.URL)
	job := history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval1m, From: t0, To: t0.Add(minutes * time.Minute)}
	ctx, cancel := context.WithCancel(context.Background())
	job.Progress = func(p history.Progress) {
		if p.Done >= 600 {
			cancel()
		}
	}
	if _, err := e.bf.Run(ctx, job); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	keys := e.keys(t, "*:backfill:*")
	if len(keys) != 1 || !strings.Contains(keys[0], "{coinbase:BTC-USD}:backfill:1m") {
		t.Fatalf("checkpoint keys %v", keys)
	}
	if ttl := e.ttl(t, keys[0]); ttl <= 0 || ttl > 7*24*time.Hour {
		t.Fatalf("checkpoint TTL %v", ttl)
	}
	n := len(srv.log())
	job.Progress = nil
	res, err := e.bf.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Fatal("second run did not resume")
	}
	if first := srv.log()[n]; !strings.Contains(first, "start="+strings.ReplaceAll(market.FormatTime(t0.Add(600*time.Minute)), ":", "%3A")) {
		t.Fatalf("resumed run started with %s, want start at minute 600", first)
	}
	if len(srv.log())-n != 3 {
		t.Fatalf("resumed run made %d requests, want 3", len(srv.log())-n)
	}
	want := expected(market.Coinbase, btcusd, market.Interval1m, naive(trades, time.Minute), t0, t0.Add(minutes*time.Minute), false, false)
	if diff := cmp.Diff(want, e.stored(t, market.Coinbase, btcusd, market.Interval1m), decimalCmp); diff != "" {
		t.Fatalf("stored candles (-want +got):\n%s", diff)
	}
	if keys := e.keys(t, "*:backfill:*"); len(keys) != 0 {
		t.Fatalf("checkpoint left after completion: %v", keys)
	}
}

// A relative range run again later (--since 1d a few minutes on) starts inside the part
// an interrupted run had done: it continues after that part, to its own end; a range
// starting before the checkpoint's does not.
func TestBackfillResumesShiftedRange(t *testing.T) {
	const minutes = 1500
	trades := genTrades(market.Coinbase, btcusd, minutes+10, 5)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(2*24*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "coinbase-exchange", srv.URL)
	interrupt := func(from time.Time) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		job := history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval1m, From: from, To: from.Add(minutes * time.Minute),
			Progress: func(p history.Progress) {
				if p.Done >= 600 {
					cancel()
				}
			}}
		if _, err := e.bf.Run(ctx, job); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
	}
	interrupt(t0.Add(5 * time.Minute))
	// Earlier than the checkpoint's start: the part before it was never fetched.
	res, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval1m, From: t0, To: t0.Add(minutes * time.Minute)})
	if err != nil || res.Resumed {
		t.Fatalf("a range starting before the checkpoint's resumed (%+v, %v)", res, err)
	}
	interrupt(t0)
	n := len(srv.log())
	later := t0.Add(10 * time.Minute)
	res, err = e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval1m, From: later, To: later.Add(minutes * time.Minute)})
	if err != nil || !res.Resumed {
		t.Fatalf("the shifted range did not resume (%+v, %v)", res, err)
	}
	if first := srv.log()[n]; !strings.Contains(first, "start="+strings.ReplaceAll(market.FormatTime(t0.Add(600*time.Minute)), ":", "%3A")) {
		t.Fatalf("resumed run started with %s, want start at minute 600", first)
	}
	want := expected(market.Coinbase, btcusd, market.Interval1m, naive(trades, time.Minute), t0, t0.Add((minutes+10)*time.Minute), false, false)
	if diff := cmp.Diff(want, e.stored(t, market.Coinbase, btcusd, market.Interval1m), decimalCmp); diff != "" {
		t.Fatalf("stored candles (-want +got):\n%s", diff)
	}
}

// Coinbase Exchange offers no 3m candles: they are built from 1m, exactly.
func TestBackfill3mBuiltFrom1m(t *testing.T) {
	const minutes = 1200
	trades := genTrades(market.Coinbase, btcusd, minutes, 4)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(2*24*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "coinbase-exchange", srv.URL)
	res, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval3m, From: t0, To: t0.Add(minutes * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != market.Interval1m {
		t.Fatalf("built from %s, want 1m", res.Source)
	}
	want := expected(market.Coinbase, btcusd, market.Interval3m, naive(trades, 3*time.Minute), t0, t0.Add(minutes*time.Minute), false, false)
	if diff := cmp.Diff(want, e.stored(t, market.Coinbase, btcusd, market.Interval3m), decimalCmp); diff != "" {
		t.Fatalf("stored 3m candles (-want +got):\n%s", diff)
	}
	for _, c := range e.stored(t, market.Coinbase, btcusd, market.Interval3m) {
		if !c.VWAP().Equal(c.Close) {
			t.Fatalf("vwap of a candle without quote volume is %s, want the close %s", c.VWAP(), c.Close)
		}
	}
}

// Rollup of exact 1m candles (with quote volume and counts) equals 3m and 4h candles
// computed from the trades, to the last digit.
func TestRollupExact(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 24*60, 5)
	one := expected(market.Binance, btcusdt, market.Interval1m, naive(trades, time.Minute), t0, t0.Add(48*time.Hour), true, true)
	for _, iv := range []market.Interval{market.Interval3m, market.Interval15m, market.Interval4h} {
		got, err := history.Rollup(one, iv)
		if err != nil {
			t.Fatal(err)
		}
		want := expected(market.Binance, btcusdt, iv, naive(trades, iv.Duration()), t0, t0.Add(48*time.Hour), true, true)
		if diff := cmp.Diff(want, got, decimalCmp); diff != "" {
			t.Fatalf("rollup to %s (-want +got):\n%s", iv, diff)
		}
	}
	if _, err := history.Rollup(one, market.Interval1m); err == nil {
		t.Fatal("rollup 1m to 1m: no error")
	}
	h, _ := history.Rollup(one, market.Interval1h)
	if _, err := history.Rollup(h, market.Interval5m); err == nil {
		t.Fatal("rollup 1h to 5m: no error")
	}
}

// Coinbase Advanced Trade: 1m pages of at most 350; 30m is native there.
func TestBackfillCoinbaseAdvanced(t *testing.T) {
	const minutes = 800
	trades := genTrades(market.Coinbase, btcusd, minutes, 6)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(2*24*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "coinbase", srv.URL)
	for _, iv := range []market.Interval{market.Interval1m, market.Interval30m} {
		if _, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusd, Interval: iv, From: t0, To: t0.Add(minutes * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		want := expected(market.Coinbase, btcusd, iv, naive(trades, iv.Duration()), t0, iv.Align(t0.Add(minutes*time.Minute)), false, false)
		if diff := cmp.Diff(want, e.stored(t, market.Coinbase, btcusd, iv), decimalCmp); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", iv, diff)
		}
	}
}

// Kraken serves only its 720 most recent candles, the last one forming: the older part
// of the range is not available, the rest is stored with quote volume = vwap × volume.
func TestBackfillKraken(t *testing.T) {
	const minutes = 1200
	trades := genTrades(market.Kraken, btcusd, minutes, 7)
	srv := newExchangeServer(t, trades)
	ns := naive(trades, time.Minute)
	lastOpen := ns[len(ns)-1].open
	e := newEnv(t, lastOpen.Add(30*time.Second), history.BackfillConfig{})
	v := e.venue(t, "kraken", srv.URL)
	if _, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusd, Interval: market.Interval1m, From: t0, To: t0.Add(minutes * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	avail := ns[len(ns)-720:]
	want := expected(market.Kraken, btcusd, market.Interval1m, avail, t0, lastOpen, true, true)
	for i := range want {
		want[i].QuoteVolume = krakenVWAP(avail[i]).Mul(avail[i].vol)
	}
	if diff := cmp.Diff(want, e.stored(t, market.Kraken, btcusd, market.Interval1m), decimalCmp); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	for _, r := range srv.log() {
		if !strings.Contains(r, "pair=XBTUSD") {
			t.Fatalf("request %s: want pair XBTUSD", r)
		}
	}
}

// An empty range stores nothing and completes; an unknown symbol fails at once (no
// retries), wrapping ErrRequest; an interval no venue can build is ErrUnsupported.
func TestBackfillEdges(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 60, 8)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
	v := e.venue(t, "binance", srv.URL)
	ctx := context.Background()
	res, err := e.bf.Run(ctx, history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m, From: t0.Add(5 * time.Hour), To: t0.Add(6 * time.Hour)})
	if err != nil || res.Stored != 0 {
		t.Fatalf("empty range: %+v %v", res, err)
	}
	n := len(srv.log())
	_, err = e.bf.Run(ctx, history.Job{Venue: v, Symbol: "NO-PE", Interval: market.Interval1m, From: t0, To: t0.Add(time.Hour)})
	if !errors.Is(err, history.ErrRequest) || !strings.Contains(err.Error(), "Invalid symbol") || len(srv.log())-n != 1 {
		t.Fatalf("unknown symbol: %v after %d requests", err, len(srv.log())-n)
	}
	cb := e.venue(t, "coinbase-exchange", srv.URL)
	if _, err := e.bf.Run(ctx, history.Job{Venue: cb, Symbol: btcusd, Interval: market.Interval1s, From: t0, To: t0.Add(time.Hour)}); !errors.Is(err, history.ErrUnsupported) {
		t.Fatalf("1s on coinbase: %v", err)
	}
	if _, err := e.bf.Run(ctx, history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m, From: t0, To: t0}); err == nil {
		t.Fatal("empty job range: no error")
	}
	srv.failNext("503", "503", "503", "503", "503", "503", "503", "503")
	if _, err := e.bf.Run(ctx, history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m, From: t0, To: t0.Add(time.Hour)}); !errors.Is(err, history.ErrRequest) || !strings.Contains(err.Error(), "gave up after 8 attempts") {
		t.Fatalf("persistent 503: %v", err)
	}
}

// Binance's used weight at the limit makes the client wait for the next minute.
func TestBinanceWeightWait(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 10, 9)
	srv := newExchangeServer(t, trades)
	now := t0.Add(24*time.Hour + 15*time.Second)
	e := newEnv(t, now, history.BackfillConfig{})
	v, err := history.NewVenue("binance", history.VenueConfig{BaseURL: srv.URL, RequestsPerSecond: -1, Sleep: e.waits.sleep,
		Now: func() time.Time { return now }, BinanceWeightLimit: 2}, e.m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.bf.Run(context.Background(), history.Job{Venue: v, Symbol: btcusdt, Interval: market.Interval1m, From: t0, To: t0.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := e.waits.all(); len(got) != 1 || got[0] != 46*time.Second {
		t.Fatalf("waits %v, want one of 46s (to the next minute and a second)", got)
	}
}

// Kraken says "slow down" in a 200 answer: the request is retried after a backoff.
func TestKrakenRateLimitInBody(t *testing.T) {
	trades := genTrades(market.Kraken, btcusd, 100, 14)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
	srv.failNext("kraken-rate-limit", "kraken-rate-limit")
	res, err := e.bf.Run(context.Background(), history.Job{Venue: e.venue(t, "kraken", srv.URL), Symbol: btcusd, Interval: market.Interval1m, From: t0, To: t0.Add(100 * time.Minute)})
	if err != nil || res.Stored == 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if got := e.waits.all(); len(got) != 2 || got[0] != 500*time.Millisecond || got[1] != time.Second {
		t.Fatalf("waits %v, want the backoff 0.5s, 1s", got)
	}
}

// A server that ignores the requested range (always the same page) cannot make the
// backfill loop: it ends, storing only what falls in the range.
func TestBackfillEndsWhenServerIgnoresRange(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 5, 15)
	page := newExchangeServer(t, trades)
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		q := r.URL.Query()
		q.Set("startTime", strconv.FormatInt(t0.UnixMilli(), 10))
		q.Set("endTime", strconv.FormatInt(t0.Add(time.Hour).UnixMilli(), 10))
		r.URL.RawQuery = q.Encode()
		page.serve(w, r)
	}))
	defer srv.Close()
	e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
	res, err := e.bf.Run(context.Background(), history.Job{Venue: e.venue(t, "binance", srv.URL), Symbol: btcusdt, Interval: market.Interval1m, From: t0.Add(2 * time.Minute), To: t0.Add(3000 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(expected(market.Binance, btcusdt, market.Interval1m, naive(trades, time.Minute), t0.Add(2*time.Minute), t0.Add(time.Hour), true, true)); res.Stored != want {
		t.Fatalf("stored %d, want %d", res.Stored, want)
	}
	if calls > 10 {
		t.Fatalf("%d requests for 3 windows", calls)
	}
}

// Built from trades: Kraken's range older than its 720 candles, and 1s candles on
// Kraken and Binance (aggTrades by time), exact to the last digit and trade count.
func TestBackfillFromTrades(t *testing.T) {
	for _, c := range []struct {
		venue string
		ex    market.Exchange
		sym   market.Symbol
		iv    market.Interval
		mins  int
	}{
		{"kraken", market.Kraken, btcusd, market.Interval1m, 1500},
		{"kraken", market.Kraken, btcusd, market.Interval1s, 90},
		{"binance", market.Binance, btcusdt, market.Interval1s, 150},
	} {
		trades := genTrades(c.ex, c.sym, c.mins, 16)
		srv := newExchangeServer(t, trades)
		e := newEnv(t, t0.Add(time.Duration(c.mins)*time.Minute+time.Hour), history.BackfillConfig{})
		to := t0.Add(time.Duration(c.mins) * time.Minute)
		res, err := e.bf.Run(context.Background(), history.Job{Venue: e.venue(t, c.venue, srv.URL), Symbol: c.sym, Interval: c.iv, From: t0, To: to, FromTrades: true})
		if err != nil {
			t.Fatalf("%s %s: %v", c.venue, c.iv, err)
		}
		want := expected(c.ex, c.sym, c.iv, naive(trades, c.iv.Duration()), t0, to, true, true)
		if res.Stored != len(want) {
			t.Fatalf("%s %s: stored %d, want %d", c.venue, c.iv, res.Stored, len(want))
		}
		if diff := cmp.Diff(want, e.stored(t, c.ex, c.sym, c.iv), decimalCmp); diff != "" {
			t.Fatalf("%s %s (-want +got):\n%s", c.venue, c.iv, diff)
		}
	}
}
