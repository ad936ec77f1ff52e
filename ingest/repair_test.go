package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// fakeRepairer injects the repairer's answers: the REST side is tested in history and
// end to end in cmd/tickstash; here it is the ingester's handling that is under test.
type fakeRepairer struct {
	fetch     func(ctx context.Context, g ingest.Gap) ([]market.Trade, error)
	fetched   chan ingest.Gap // hears of each FetchGap call
	mu        sync.Mutex
	rebuilt   [][2]time.Time // the from, to of each RecomputeCandles call
	rebuiltCh chan struct{}
	// atRebuild, if set, runs at the start of RecomputeCandles.
	atRebuild func()
}

func (f *fakeRepairer) FetchGap(ctx context.Context, g ingest.Gap) ([]market.Trade, error) {
	f.fetched <- g
	return f.fetch(ctx, g)
}

func (f *fakeRepairer) RecomputeCandles(_ context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval,
	from, to time.Time, extra []market.Trade) ([]market.Candle, error) {
	if f.atRebuild != nil {
		f.atRebuild()
	}
	f.mu.Lock()
	f.rebuilt = append(f.rebuilt, [2]time.Time{from, to})
	f.mu.Unlock()
	c := market.NewCandle(&extra[0], ivs[0])
	c.Closed, c.Source = true, "repair"
	close(f.rebuiltCh)
	return []market.Candle{c}, nil
}

// scriptSource sends its steps' events in order; a step may instead wait for a signal.
type scriptSource struct {
	steps []func(ctx context.Context, out chan<- ingest.Event) error
}

func (*scriptSource) Name() string { return "script" }

func (s *scriptSource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for _, st := range s.steps {
		if err := st(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

func emit(evs ...ingest.Event) func(context.Context, chan<- ingest.Event) error {
	return func(ctx context.Context, out chan<- ingest.Event) error {
		for _, ev := range evs {
			select {
			case out <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
}

func await[T any](t *testing.T, ch <-chan T, what string) func(context.Context, chan<- ingest.Event) error {
	return func(context.Context, chan<- ingest.Event) error {
		select {
		case <-ch:
			return nil
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Errorf("never saw %s", what)
			return errors.New("hung")
		}
	}
}

func gapTrade(id int, at time.Duration) market.Trade {
	return market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: itoa(id), Price: dec("100.5"), Qty: dec("0.25"),
		Side: market.Buy, Time: t0.Add(at)}
}

// TestGapRepairRebuildsClosedCandles: a gap's trades come back from the repairer while
// their minute is still forming; the rebuild waits until that minute has closed, runs
// once, and the rebuilt candle is announced to the sink (its analysis runs again).
func TestGapRepairRebuildsClosedCandles(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	missing := []market.Trade{gapTrade(3, 20*time.Second), gapTrade(4, 30*time.Second)}
	rp := &fakeRepairer{fetched: make(chan ingest.Gap, 1), rebuiltCh: make(chan struct{}),
		fetch: func(context.Context, ingest.Gap) ([]market.Trade, error) {
			return append(missing, gapTrade(9, 0)), nil // an id outside the gap is dropped
		}}
	gap := ingest.NewGapEvent(ingest.Gap{Exchange: market.Binance, Symbol: "BTC-USDT", FromID: "3", ToID: "4", Missing: 2,
		Time: t0.Add(40 * time.Second), LastTime: t0.Add(10 * time.Second)})
	src := &scriptSource{steps: []func(context.Context, chan<- ingest.Event) error{
		emit(tradeEvent(gapTrade(1, 5*time.Second)), tradeEvent(gapTrade(2, 10*time.Second)), gap, tradeEvent(gapTrade(5, 40*time.Second))),
		await(t, rp.fetched, "the gap fetched"),
		// Give the fetched trades time to reach the router before the minute closes,
		// so that a rebuild released too early is caught by atRebuild (the pause only
		// makes that check sharper; the test passes the same without it).
		func(context.Context, chan<- ingest.Event) error { time.Sleep(200 * time.Millisecond); return nil },
		emit(tradeEvent(gapTrade(6, 70*time.Second))), // closes the first minute
		await(t, rp.rebuiltCh, "the candles rebuilt"),
	}}
	sink := &closedCandles{ch: make(chan market.Candle, 16)}
	reg := prometheus.NewRegistry()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	rp.atRebuild = func() {
		// The rebuild reads the stored trades: the minute's live candle, closed, must
		// be written before it.
		cs, err := store.CandlesBetween(context.Background(), market.Binance, "BTC-USDT", market.Interval1m, t0, t0.Add(time.Minute), 2)
		if err != nil || len(cs) != 1 || !cs[0].Closed || cs[0].Trades != 3 {
			t.Errorf("at the rebuild the minute's stored candles are %+v (%v); want the live one, closed, with its 3 trades", cs, err)
		}
	}
	g := ingest.NewIngester(store, sink, []ingest.Source{src},
		ingest.IngesterConfig{Aggregator: ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m}},
			EventTimeWatermark: true, FlushInterval: 10 * time.Millisecond, GapRepair: ingest.GapRepairConfig{Repairer: rp}},
		quiet(), reg)
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rp.rebuilt) != 1 || !rp.rebuilt[0][0].Equal(missing[0].Time) || !rp.rebuilt[0][1].Equal(missing[1].Time.Add(time.Nanosecond)) {
		t.Fatalf("rebuilt %v, want once over the missing trades' span %s..%s", rp.rebuilt, missing[0].Time, missing[1].Time)
	}
	close(sink.ch)
	var repairedAnnounced bool
	for c := range sink.ch {
		repairedAnnounced = repairedAnnounced || c.Source == "repair"
	}
	if !repairedAnnounced {
		t.Error("the rebuilt candle was not announced to the sink")
	}
	if got := counter(t, reg, "tickstash_ingest_gap_repairs_total"); got != 1 {
		t.Errorf("gap repairs %v, want 1", got)
	}
	if got := counter(t, reg, "tickstash_ingest_gap_trades_repaired_total"); got != 2 {
		t.Errorf("trades repaired %v, want 2 (the id outside the gap dropped)", got)
	}
}

// TestGapRepairUnrepairable: a repairer's verdict is counted by its reason, a full
// queue as overloaded, and nothing is rebuilt.
func TestGapRepairUnrepairable(t *testing.T) {
	rdb := redistest.Client(t)
	gapEv := func(from string) ingest.Event {
		return ingest.NewGapEvent(ingest.Gap{Exchange: market.Binance, Symbol: "BTC-USDT", FromID: from, ToID: from, Missing: 1, Time: t0})
	}
	t.Run("reason", func(t *testing.T) {
		rp := &fakeRepairer{fetched: make(chan ingest.Gap, 1), fetch: func(context.Context, ingest.Gap) ([]market.Trade, error) {
			return nil, &ingest.GapError{Reason: "incomplete", Err: errors.New("1 of 2 missing trades found")}
		}}
		src := &scriptSource{steps: []func(context.Context, chan<- ingest.Event) error{
			emit(tradeEvent(gapTrade(1, 0)), gapEv("2"), tradeEvent(gapTrade(3, time.Second))),
			await(t, rp.fetched, "the gap fetched"),
		}}
		reg := prometheus.NewRegistry()
		g := ingest.NewIngester(cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: redistest.Prefix(t, rdb)}, nil), nil,
			[]ingest.Source{src}, ingest.IngesterConfig{EventTimeWatermark: true, GapRepair: ingest.GapRepairConfig{Repairer: rp}}, quiet(), reg)
		if err := g.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := metricstest.Counter(t, reg, "tickstash_ingest_gaps_unrepairable_total", "reason", "incomplete"); got != 1 {
			t.Errorf("unrepairable{reason=incomplete} = %v, want 1", got)
		}
		if got := metricstest.Counter(t, reg, "tickstash_ingest_gap_repairs_total", "result", "unrepairable"); got != 1 {
			t.Errorf("repairs{result=unrepairable} = %v, want 1", got)
		}
		if len(rp.rebuilt) != 0 {
			t.Errorf("candles rebuilt for an unrepairable gap: %v", rp.rebuilt)
		}
	})
	t.Run("overloaded", func(t *testing.T) {
		// One worker stuck in its fetch and a queue of one: of three gaps, at least one
		// finds no room.
		rp := &fakeRepairer{fetched: make(chan ingest.Gap, 3), fetch: func(ctx context.Context, _ ingest.Gap) ([]market.Trade, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		src := &scriptSource{steps: []func(context.Context, chan<- ingest.Event) error{emit(gapEv("2"), gapEv("4"), gapEv("6"))}}
		reg := prometheus.NewRegistry()
		g := ingest.NewIngester(cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: redistest.Prefix(t, rdb)}, nil), nil,
			[]ingest.Source{src}, ingest.IngesterConfig{GapRepair: ingest.GapRepairConfig{Repairer: rp, Workers: 1, Queue: 1}}, quiet(), reg)
		if err := g.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := metricstest.Counter(t, reg, "tickstash_ingest_gaps_unrepairable_total", "reason", ingest.ReasonOverloaded); got < 1 || got > 2 {
			t.Errorf("unrepairable{reason=overloaded} = %v, want 1 or 2", got)
		}
	})
}

// TestGapRepairAfterRestart: the trades a market missed while no ingester ran (between
// the last id stored and the first id of the next run) are reported as a gap, with
// the last stored trade's time; a gap beyond MaxMissing is counted too_large instead.
func TestGapRepairAfterRestart(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	cfg := ingest.IngesterConfig{Aggregator: ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m}}, EventTimeWatermark: true}
	first := &sliceSource{trades: []market.Trade{gapTrade(1, 0), gapTrade(2, 5*time.Second)}}
	g := ingest.NewIngester(cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil), nil, []ingest.Source{first}, cfg, quiet(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	first.done = cancel
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name       string
		maxMissing int64
		id         int // the first trade id of the run; the previous run stored up to 2, then 6
	}{{"repaired", 0, 6}, {"too large", 2, 10}} {
		t.Run(tt.name, func(t *testing.T) {
			rp := &fakeRepairer{fetched: make(chan ingest.Gap, 1), fetch: func(context.Context, ingest.Gap) ([]market.Trade, error) {
				return nil, &ingest.GapError{Reason: "test", Err: errors.New("answered by the test")}
			}}
			steps := []func(context.Context, chan<- ingest.Event) error{emit(tradeEvent(gapTrade(tt.id, 20*time.Second)))}
			if tt.maxMissing == 0 {
				steps = append(steps, func(context.Context, chan<- ingest.Event) error {
					select {
					case g := <-rp.fetched:
						if g.FromID != "3" || g.ToID != "5" || g.Missing != 3 || !g.LastTime.Equal(t0.Add(5*time.Second)) || !g.Time.Equal(t0.Add(20*time.Second)) {
							t.Errorf("restart gap %+v; want ids 3..5, 3 missing, between the trades at 5s and 20s", g)
						}
						return nil
					case <-time.After(30 * time.Second): // a hang guard
						t.Error("the restart gap never reached the repairer")
						return errors.New("hung")
					}
				})
			}
			c := cfg
			c.GapRepair = ingest.GapRepairConfig{Repairer: rp, MaxMissing: tt.maxMissing}
			reg := prometheus.NewRegistry()
			g := ingest.NewIngester(cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil), nil,
				[]ingest.Source{&scriptSource{steps: steps}}, c, quiet(), reg)
			if err := g.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.maxMissing != 0 {
				if got := metricstest.Counter(t, reg, "tickstash_ingest_gaps_unrepairable_total", "reason", ingest.ReasonTooLarge); got != 1 {
					t.Errorf("unrepairable{reason=too_large} = %v, want 1", got)
				}
				if len(rp.fetched) != 0 {
					t.Error("a gap beyond MaxMissing was fetched")
				}
				return
			}
			if got := metricstest.Counter(t, reg, "tickstash_ingest_gaps_unrepairable_total", "reason", "test"); got != 1 {
				t.Errorf("the restart gap was not handed to the repairer: unrepairable{reason=test} = %v", got)
			}
		})
	}
}
