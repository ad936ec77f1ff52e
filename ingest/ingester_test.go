package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// closedCandles records the candles a sink hears of.
type closedCandles struct{ ch chan market.Candle }

func (c *closedCandles) CandleClosed(_ context.Context, cd market.Candle) error {
	c.ch <- cd
	return nil
}

// TestIngestSyntheticIntoRedis runs a finite synthetic market through the ingester into
// the real Redis and checks the stored candles against the aggregator run directly over
// the same trades.
func TestIngestSyntheticIntoRedis(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	scfg := ingest.SyntheticConfig{Seed: 7, Symbols: 3, Rate: 20, MaxSpeed: true, Start: t0, Limit: 3000}
	src, err := ingest.NewSynthetic(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ivs := []market.Interval{market.Interval1m, market.Interval5m}
	sink := &closedCandles{ch: make(chan market.Candle, 10000)}
	g := ingest.NewIngester(store, sink, []ingest.Source{src}, ingest.IngesterConfig{
		Aggregator: ingest.AggregatorConfig{Intervals: ivs}, BatchSize: 100, EventTimeWatermark: true,
	}, quiet(), prometheus.NewRegistry())
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}

	// The reference: the same trades through a bare aggregator.
	ref, _ := ingest.NewSynthetic(scfg)
	events := make(chan ingest.Event, 4000)
	_ = ref.Run(ctx, events)
	close(events)
	agg := ingest.NewAggregator(ingest.AggregatorConfig{Intervals: ivs})
	var want []market.Candle
	var last = map[market.Symbol]market.Trade{}
	for ev := range events {
		want, _ = agg.Add(ev.Trade(), want)
		last[ev.Trade().Symbol] = *ev.Trade()
	}
	want = agg.Flush(want)

	wantBy := map[string][]market.Candle{}
	for _, c := range want {
		k := string(c.Symbol) + "/" + c.Interval.String()
		wantBy[k] = append(wantBy[k], c)
	}
	for _, sym := range src.Symbols() {
		for _, iv := range ivs {
			got, err := store.LastCandles(ctx, market.Synthetic, sym, iv, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantBy[string(sym)+"/"+iv.String()], got); diff != "" {
				t.Errorf("%s %s candles in Redis (-want +got):\n%.3000s", sym, iv, diff)
			}
		}
		tk, err := store.Ticker(ctx, market.Synthetic, sym)
		if err != nil {
			t.Fatal(err)
		}
		if lt := last[sym]; !tk.Last.Equal(lt.Price) || tk.LastTradeID != lt.ID {
			t.Errorf("%s ticker last %s id %s, want %s id %s", sym, tk.Last, tk.LastTradeID, lt.Price, lt.ID)
		}
	}
	var streamed int64
	for _, sym := range src.Symbols() {
		streamed += rdb.XLen(ctx, store.Keys().Trades(market.Synthetic, sym)).Val()
	}
	if streamed != 3000 {
		t.Errorf("trade streams hold %d trades, want 3000", streamed)
	}
	if len(sink.ch) != len(want) {
		t.Errorf("sink heard of %d closed candles, want %d", len(sink.ch), len(want))
	}
}

// TestIngestSurvivesRedisOutage kills a Redis of the test's own while trades flow, then
// restarts it: the ingester retries, counts the failures, and loses nothing.
func TestIngestSurvivesRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, reg)

	feed := make(chan market.Trade)
	src := chanSource{feed}
	g := ingest.NewIngester(store, nil, []ingest.Source{src}, ingest.IngesterConfig{
		FlushInterval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		EventTimeWatermark: true,
	}, quiet(), reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	send := func(from, to int) {
		for i := from; i < to; i++ {
			feed <- market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: itoa(i), Price: dec("100"), Qty: dec("1"),
				Side: market.Buy, Time: t0.Add(time.Duration(i) * time.Millisecond)}
		}
	}
	send(1, 101)
	testenv.WaitFor(t, "the first 100 trades in Redis", func() bool {
		return rdb.XLen(context.Background(), store.Keys().Trades(market.Binance, "BTC-USDT")).Val() == 100
	})

	srv.Stop()
	send(101, 201) // buffered while Redis is down
	testenv.WaitFor(t, "two write retries", func() bool { return counter(t, reg, "tickstash_ingest_write_retries_total") >= 2 })
	srv.Start() // an empty Redis: what was buffered (and, if a batch was in flight at the kill, more) must arrive
	key := store.Keys().Trades(market.Binance, "BTC-USDT")
	lastID := func() string {
		msgs, err := rdb.XRevRangeN(context.Background(), key, "+", "-", 1).Result()
		if err != nil || len(msgs) == 0 {
			return ""
		}
		return msgs[0].Values["id"].(string)
	}
	testenv.WaitFor(t, "trade 200 in the restarted Redis", func() bool { return lastID() == "200" })
	send(201, 251)
	testenv.WaitFor(t, "trade 250", func() bool { return lastID() == "250" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := counter(t, reg, "tickstash_cache_write_errors_total"); n < 1 {
		t.Errorf("write errors metric = %v, want > 0", n)
	}
	// Every trade sent after the outage began is there once, in order. (Trades 1-100
	// may be there too: a batch whose script load failed at the kill is written again,
	// whole, to the new server.)
	msgs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, m := range msgs {
		id, _ := strconv.Atoi(m.Values["id"].(string))
		ids = append(ids, id)
	}
	if len(ids) < 150 || ids[len(ids)-150] != 101 {
		t.Fatalf("stream holds ids %v; want 101..250 at the end", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids not consecutive at %d: %v", i, ids)
		}
	}
}

type chanSource struct{ ch chan market.Trade }

func (chanSource) Name() string { return "test" }

func (s chanSource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case tr := <-s.ch:
			out <- tradeEvent(tr)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestIngestResumesAfterRestart stops an ingester mid-candle and starts another on the
// same Redis: the candle in progress must carry on with both runs' trades, and trades
// the second run sees again must not be counted twice.
func TestIngestResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	mk := func(id int, at time.Duration, price string) market.Trade {
		return market.Trade{Exchange: market.Kraken, Symbol: "BTC-USD", ID: itoa(id), Price: dec(price), Qty: dec("1"),
			Side: market.Buy, Time: t0.Add(at)}
	}
	run := func(trades ...market.Trade) {
		t.Helper()
		store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
		src := &sliceSource{trades: trades}
		g := ingest.NewIngester(store, nil, []ingest.Source{src}, ingest.IngesterConfig{
			Aggregator: ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1h}},
			// Stopped by its context, as a process is: forming candles stay forming.
			EventTimeWatermark: true,
		}, quiet(), prometheus.NewRegistry())
		runCtx, cancel := context.WithCancel(ctx)
		src.done = cancel
		if err := g.Run(runCtx); err != nil {
			t.Fatal(err)
		}
	}
	run(mk(1, time.Minute, "100"), mk(2, 2*time.Minute, "105"))
	run(mk(2, 2*time.Minute, "105"), mk(3, 3*time.Minute, "95")) // overlaps the first run by one trade
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	got, err := store.LastCandles(ctx, market.Kraken, "BTC-USD", market.Interval1h, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Trades != 3 || !got[0].Open.Equal(dec("100")) || !got[0].High.Equal(dec("105")) ||
		!got[0].Low.Equal(dec("95")) || !got[0].Volume.Equal(dec("3")) || got[0].Closed {
		t.Errorf("after restart the hour candle is %+v; want open 100 high 105 low 95, 3 trades, forming", got)
	}
}

// sliceSource emits its trades, then cancels the run (as a stop signal would).
type sliceSource struct {
	trades []market.Trade
	done   func()
}

func (*sliceSource) Name() string { return "slice" }

func (s *sliceSource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for _, tr := range s.trades {
		out <- tradeEvent(tr)
	}
	s.done()
	<-ctx.Done()
	return nil
}

// TestIngestAnnouncesClosedCandleBeforeFlush checks that a trade closing a candle has the
// candle stored and announced at once, not at the next flush: the flush interval is an
// hour, so a candle announced at all was announced by the closing trade.
func TestIngestAnnouncesClosedCandleBeforeFlush(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	feed := make(chan market.Trade)
	sink := &closedCandles{ch: make(chan market.Candle, 16)}
	g := ingest.NewIngester(store, sink, []ingest.Source{chanSource{feed}}, ingest.IngesterConfig{
		Aggregator:    ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m}},
		FlushInterval: time.Hour, EventTimeWatermark: true,
	}, quiet(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	trade := func(id int, at time.Time, price string) market.Trade {
		return market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: itoa(id), Price: dec(price), Qty: dec("1"),
			Side: market.Buy, Time: at}
	}
	feed <- trade(1, t0.Add(time.Second), "100")
	feed <- trade(2, t0.Add(30*time.Second), "101")
	feed <- trade(3, t0.Add(time.Minute), "102") // closes the first minute's candle
	select {
	case c := <-sink.ch:
		if !c.OpenTime.Equal(t0) || !c.Close.Equal(dec("101")) || c.Trades != 2 {
			t.Errorf("announced %+v, want the candle of %v closing at 101 after 2 trades", c, t0)
		}
		got, err := store.LastCandles(ctx, market.Binance, "BTC-USDT", market.Interval1m, 1)
		if err != nil || len(got) != 1 || !got[0].OpenTime.Equal(t0) {
			t.Errorf("stored candles %+v, %v: want the announced one, written before its announcement", got, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the closed candle was not announced before the next flush (an hour away)")
	}
}
