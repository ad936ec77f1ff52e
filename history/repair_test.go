package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/market"
)

// captureTrades decodes the trades of one product from the recorded Coinbase Exchange
// feed, each id once, in feed order.
func captureTrades(t *testing.T, sym market.Symbol) []market.Trade {
	t.Helper()
	r, err := capture.Open("../../shared/testdata/captures/coinbase-exchange-2021.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := coinbase.NewExchangeDecoder()
	var evs []ingest.Draft
	var out []market.Trade
	seen := map[string]bool{}
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		if rec.Type != capture.TypeRecv {
			continue
		}
		evs, _ = d.Decode(evs[:0], rec.Data, rec.Time)
		for _, e := range evs {
			if e.Kind == ingest.KindTrade && e.Trade.Symbol == sym && !seen[e.Trade.ID] {
				seen[e.Trade.ID] = true
				tr := e.Trade
				tr.ReceivedAt = time.Time{}
				out = append(out, tr)
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("capture holds %d %s trades, want 40 or more", len(out), sym)
	}
	return out
}

func idSet(groups ...[]market.Trade) func(string) bool {
	m := map[string]bool{}
	for _, g := range groups {
		for _, t := range g {
			m[t.ID] = true
		}
	}
	return func(id string) bool { return m[id] }
}

// A recorded Coinbase feed with a gap: the REST fake serves the missing trades (in
// pages of 7, newest first, with CB-AFTER cursors); stream before + repaired + stream
// after builds exactly the candles of the uninterrupted stream, in memory and in Redis.
func TestRepairCapturedGap(t *testing.T) {
	sym := market.Symbol("SKL-USD")
	full := captureTrades(t, sym)
	const k, m = 15, 20
	before, missing, after := full[:k], full[k:k+m], full[k+m:]
	srv := newExchangeServer(t, full)
	srv.pageMax = 7
	now := full[len(full)-1].Time.Add(time.Hour)
	e := newEnv(t, now, history.BackfillConfig{})
	v := e.venue(t, "coinbase-exchange", srv.URL)
	rp := history.NewRepairer([]history.Venue{v}, e.store, e.m, history.RepairConfig{Now: func() time.Time { return now }})
	ctx := context.Background()
	gap := history.Gap{Exchange: market.Coinbase, Symbol: sym, FromID: missing[0].ID, ToID: missing[m-1].ID, Detected: after[0].Time}
	got, err := rp.FetchGap(ctx, gap, idSet(before, after))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(missing, got, decimalCmp); diff != "" {
		t.Fatalf("repaired trades (-want +got):\n%s", diff)
	}
	if len(srv.log()) < 3 {
		t.Fatalf("%d requests: want the gap paged", len(srv.log()))
	}
	if n := testutil.ToFloat64(e.m.RepairedCounter(market.Coinbase)); n != m {
		t.Fatalf("repaired metric %v, want %d", n, m)
	}

	for _, iv := range []market.Interval{market.Interval1s, market.Interval1m} {
		whole := history.CandlesFromTrades(full, iv, full[0].Time, now, history.SourceRepair)
		fixed := history.CandlesFromTrades(history.MergeTrades(append(append([]market.Trade{}, before...), after...), got), iv, full[0].Time, now, history.SourceRepair)
		if diff := cmp.Diff(whole, fixed, decimalCmp); diff != "" {
			t.Fatalf("%s candles after repair (-uninterrupted +repaired):\n%s", iv, diff)
		}
		want := expected(market.Coinbase, sym, iv, naive(full, iv.Duration()), full[0].Time.Add(-time.Hour), now, true, true)
		for i := range want {
			want[i].Source = history.SourceRepair
		}
		if diff := cmp.Diff(want, whole, decimalCmp); diff != "" {
			t.Fatalf("%s candles differ from the independent computation:\n%s", iv, diff)
		}
	}

	// In Redis: the stream holds before and after; the live aggregator's candles over the
	// gap are wrong; RecomputeCandles fixes them.
	for _, part := range [][]market.Trade{before, after} {
		if _, err := e.store.Write(ctx, &cache.Batch{Trades: part}); err != nil {
			t.Fatal(err)
		}
	}
	wrong := history.CandlesFromTrades(append(append([]market.Trade{}, before...), after...), market.Interval1m, full[0].Time, now, "")
	if _, err := e.store.Write(ctx, &cache.Batch{Candles: wrong}); err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(history.CandlesFromTrades(full, market.Interval1m, full[0].Time, now, ""), wrong, decimalCmp) {
		t.Fatal("the gap does not change the candles: the test proves nothing")
	}
	n, err := rp.RecomputeCandles(ctx, market.Coinbase, sym, []market.Interval{market.Interval1m}, missing[0].Time, after[0].Time.Add(time.Nanosecond), got)
	if err != nil || n == 0 {
		t.Fatalf("recompute: %d candles, %v", n, err)
	}
	want := history.CandlesFromTrades(full, market.Interval1m, full[0].Time, now, "")
	gotStored := e.stored(t, market.Coinbase, sym, market.Interval1m)
	if diff := cmp.Diff(want, gotStored, decimalCmp, cmpopts.IgnoreFields(market.Candle{}, "Source")); diff != "" {
		t.Fatalf("stored candles after repair (-want +got):\n%s", diff)
	}
	repaired := 0
	for _, c := range gotStored {
		if c.Source == history.SourceRepair {
			repaired++
		}
	}
	if repaired != n {
		t.Fatalf("%d candles marked repaired, %d written", repaired, n)
	}
}

// Gaps by id on Binance (trade and aggregate-trade ids) and by time on Kraken.
func TestRepairBinanceAndKraken(t *testing.T) {
	ctx := context.Background()
	for _, agg := range []bool{false, true} {
		trades := genTrades(market.Binance, btcusdt, 600, 11)
		srv := newExchangeServer(t, trades)
		e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
		v, err := history.NewVenue("binance", history.VenueConfig{BaseURL: srv.URL, RequestsPerSecond: -1, Sleep: e.waits.sleep, BinanceAggTradeIDs: agg}, e.m)
		if err != nil {
			t.Fatal(err)
		}
		rp := history.NewRepairer([]history.Venue{v}, nil, e.m, history.RepairConfig{})
		missing := trades[100:1400] // two pages of 1000
		got, err := rp.FetchGap(ctx, history.Gap{Exchange: market.Binance, Symbol: btcusdt, FromID: missing[0].ID, ToID: missing[len(missing)-1].ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(missing, got, decimalCmp); diff != "" {
			t.Fatalf("agg=%v (-want +got):\n%s", agg, diff)
		}
	}
	trades := genTrades(market.Kraken, btcusd, 600, 12)
	srv := newExchangeServer(t, trades)
	e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
	rp := history.NewRepairer([]history.Venue{e.venue(t, "kraken", srv.URL)}, nil, e.m, history.RepairConfig{})
	from, to := t0.Add(37*time.Minute+123*time.Millisecond), t0.Add(421*time.Minute)
	var want []market.Trade
	for _, tr := range trades {
		if !tr.Time.Before(from) && tr.Time.Before(to) {
			want = append(want, tr)
		}
	}
	got, err := rp.FetchGap(ctx, history.Gap{Exchange: market.Kraken, Symbol: btcusd, From: from, To: to}, idSet(want[:5]))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[5:], got, decimalCmp); diff != "" {
		t.Fatalf("kraken (-want +got):\n%s", diff)
	}
}

// Gaps that cannot be repaired say why, and are counted by reason.
func TestRepairUnrepairable(t *testing.T) {
	sym := market.Symbol("SKL-USD")
	full := captureTrades(t, sym)
	srv := newExchangeServer(t, append(append([]market.Trade{}, full[:10]...), full[12:]...)) // the venue lost two
	e := newEnv(t, t0.Add(24*time.Hour), history.BackfillConfig{})
	rp := history.NewRepairer([]history.Venue{e.venue(t, "coinbase-exchange", srv.URL)}, nil, e.m, history.RepairConfig{})
	ctx := context.Background()
	cases := []struct {
		gap    history.Gap
		reason string
	}{
		{history.Gap{Exchange: market.Coinbase, Symbol: sym, From: t0, To: t0.Add(time.Minute)}, history.ReasonUnsupported},
		{history.Gap{Exchange: market.Kraken, Symbol: sym, FromID: "1", ToID: "2"}, history.ReasonNoVenue},
		{history.Gap{Exchange: market.Coinbase, Symbol: sym, FromID: full[8].ID, ToID: full[13].ID}, history.ReasonIncomplete},
	}
	for _, c := range cases {
		got, err := rp.FetchGap(ctx, c.gap, nil)
		var ue *history.UnrepairableError
		if !errors.As(err, &ue) || ue.Reason != c.reason {
			t.Fatalf("gap %+v: %v, want reason %s", c.gap, err, c.reason)
		}
		if n := testutil.ToFloat64(e.m.UnrepairableCounter(c.gap.Exchange, c.reason)); n != 1 {
			t.Fatalf("unrepairable{%s} = %v", c.reason, n)
		}
		if c.reason == history.ReasonIncomplete && len(got) != 4 {
			t.Fatalf("incomplete gap returned %d trades, want the 4 found", len(got))
		}
	}
	srv.failNext("404")
	if _, err := rp.FetchGap(ctx, history.Gap{Exchange: market.Coinbase, Symbol: sym, FromID: full[1].ID, ToID: full[2].ID}, nil); err == nil {
		t.Fatal("404: no error")
	} else if ue := (*history.UnrepairableError)(nil); !errors.As(err, &ue) || ue.Reason != history.ReasonRequest {
		t.Fatalf("404: %v", err)
	}
}

// Repair waits for the buckets the gap's trades fall in to end (plus the grace) before
// rewriting their candles.
func TestRepairWaitsForBucketsToClose(t *testing.T) {
	trades := genTrades(market.Binance, btcusdt, 90, 13)
	srv := newExchangeServer(t, trades)
	missing := trades[40:60]
	now := missing[len(missing)-1].Time.Add(time.Second)
	e := newEnv(t, now, history.BackfillConfig{})
	v := e.venue(t, "binance", srv.URL)
	var slept []time.Duration
	rp := history.NewRepairer([]history.Venue{v}, e.store, e.m, history.RepairConfig{
		Now: func() time.Time { return now }, Grace: 10 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			now = now.Add(d)
			return nil
		},
	})
	ctx := context.Background()
	if _, err := e.store.Write(ctx, &cache.Batch{Trades: append(append([]market.Trade{}, trades[:40]...), trades[60:]...)}); err != nil {
		t.Fatal(err)
	}
	res, err := rp.Repair(ctx, history.Gap{Exchange: market.Binance, Symbol: btcusdt, FromID: missing[0].ID, ToID: missing[19].ID},
		[]market.Interval{market.Interval1m, market.Interval5m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lastEnd := market.Interval5m.Align(missing[19].Time).Add(5*time.Minute + 10*time.Second)
	if len(slept) != 1 || slept[0] != lastEnd.Sub(missing[19].Time.Add(time.Second)) {
		t.Fatalf("slept %v, want until %s", slept, lastEnd)
	}
	if len(res.Trades) != 20 || res.Candles == 0 {
		t.Fatalf("result: %d trades, %d candles", len(res.Trades), res.Candles)
	}
	for _, iv := range []market.Interval{market.Interval1m, market.Interval5m} {
		want := history.CandlesFromTrades(trades, iv, missing[0].Time, iv.Align(missing[19].Time).Add(iv.Duration()), history.SourceRepair)
		got := e.stored(t, market.Binance, btcusdt, iv)
		if diff := cmp.Diff(want, got, decimalCmp); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", iv, diff)
		}
	}
}
