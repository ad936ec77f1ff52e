package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// aggTradeMsg is one recorded aggTrade message of the combined stream, with its trade.
type aggTradeMsg struct {
	raw string
	id  int64
	// row is the trade in the shape of Binance's REST /api/v3/aggTrades.
	row map[string]any
}

// recordedAggTrades returns the recorded OMGBUSD aggTrade messages of the Binance.US
// capture, in order: 11 consecutive aggregate trades over two minutes.
func recordedAggTrades(t *testing.T) []aggTradeMsg {
	t.Helper()
	var out []aggTradeMsg
	for _, rec := range capturetest.Recv(t, "binance-us-2021.jsonl") {
		var m struct {
			Stream string          `json:"stream"`
			Data   json.RawMessage `json:"data"`
		}
		if json.Unmarshal(rec.Data, &m) != nil || m.Stream != "omgbusd@aggTrade" {
			continue
		}
		var d struct {
			A int64  `json:"a"`
			P string `json:"p"`
			Q string `json:"q"`
			F int64  `json:"f"`
			L int64  `json:"l"`
			T int64  `json:"T"`
			M bool   `json:"m"`
		}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, aggTradeMsg{raw: string(rec.Data), id: d.A,
			row: map[string]any{"a": d.A, "p": d.P, "q": d.Q, "f": d.F, "l": d.L, "T": d.T, "m": d.M, "M": true}})
	}
	if len(out) < 10 {
		t.Fatalf("the capture has %d OMGBUSD aggTrades, the test needs 10", len(out))
	}
	for i := 1; i < len(out); i++ {
		if out[i].id != out[i-1].id+1 {
			t.Fatalf("recorded aggTrade ids not consecutive: %d after %d", out[i].id, out[i-1].id)
		}
	}
	return out
}

// aggTradesServer answers /api/v3/aggTrades?fromId in Binance's shape from the recorded
// trades, the first request with a 429 and Retry-After.
func aggTradesServer(t *testing.T, trades []aggTradeMsg) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.String())
		n := len(asked)
		mu.Unlock()
		if r.URL.Path != "/api/v3/aggTrades" || r.URL.Query().Get("symbol") != "OMGBUSD" {
			http.Error(w, `{"code":-1121,"msg":"Invalid symbol."}`, http.StatusBadRequest)
			return
		}
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, http.StatusTooManyRequests)
			return
		}
		from, err := strconv.ParseInt(r.URL.Query().Get("fromId"), 10, 64)
		if err != nil {
			http.Error(w, `{"code":-1100,"msg":"fromId"}`, http.StatusBadRequest)
			return
		}
		rows := []map[string]any{}
		for _, tr := range trades {
			if tr.id >= from {
				rows = append(rows, tr.row)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rows)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
}

// TestGapRepairAfterOutage is the outage test of issue 15: a feed server of the test's
// own replays a recorded Binance trade capture and drops the connection mid-stream; on
// the reconnect it goes on three trades later (they happened during the outage). Gap
// repair fetches them from a local REST server in Binance's aggTrades shape (after a
// 429) and rebuilds the candles: every candle in Redis then equals the candle of the
// uninterrupted stream, exactly. Without repair the candles differ, so the comparison
// can fail.
func TestGapRepairAfterOutage(t *testing.T) {
	trades := recordedAggTrades(t)
	const dropAfter, missing = 3, 3 // trades sent before the drop; trades lost with it
	send := func(ts []aggTradeMsg) []wsfeedtest.Step {
		var steps []wsfeedtest.Step
		for _, tr := range ts {
			steps = append(steps, wsfeedtest.Step{Send: tr.raw})
		}
		return steps
	}
	whole := append(send(trades), wsfeedtest.Step{Silence: true})
	before := append(send(trades[:dropAfter]), wsfeedtest.Step{Drop: true})
	after := append(send(trades[dropAfter+missing:]), wsfeedtest.Step{Silence: true})
	rest, asked := aggTradesServer(t, trades)
	rdb := redistest.Client(t)
	ivs := []market.Interval{market.Interval1s, market.Interval1m}
	sym := market.Symbol("OMG-BUSD")
	first, last := time.UnixMilli(trades[0].row["T"].(int64)), time.UnixMilli(trades[len(trades)-1].row["T"].(int64))
	lastCandle := market.Interval1m.Align(last)

	// ingestFeed ingests the feed server's scripts into its own key prefix until the
	// newest minute holds the last trade (and, with repair, the gap's candles are
	// rebuilt), and returns every candle stored.
	ingestFeed := func(t *testing.T, repair bool, scripts ...[]wsfeedtest.Step) ([]market.Candle, string) {
		ws := wsfeedtest.NewServer(t, scripts...)
		prefix := redistest.Prefix(t, rdb)
		reg := prometheus.NewRegistry()
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, reg)
		cfg := ingest.IngesterConfig{
			Aggregator:         ingest.AggregatorConfig{Intervals: ivs},
			FlushInterval:      20 * time.Millisecond,
			EventTimeWatermark: true, // recorded data: candles close by its own time
		}
		if repair {
			rp, err := newGapRepairer(newVenues(map[string]string{"binance": rest.URL}, reg, log), store, true)
			if err != nil {
				t.Fatal(err)
			}
			cfg.GapRepair.Repairer = rp
		}
		src := binance.New(binance.Config{URL: ws.URL, Symbols: []string{"OMGBUSD"}, Streams: []string{"aggTrade"},
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, log, reg)
		ing := ingest.NewIngester(store, nil, []ingest.Source{src}, cfg, log, reg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ing.Run(ctx) }()
		var once sync.Once
		var runErr error
		stop := func() error { once.Do(func() { cancel(); runErr = <-done }); return runErr }
		defer stop()
		// Wait for the state to settle: the last trade in, and the repair done.
		for deadline := time.Now().Add(20 * time.Second); ; {
			cs, err := store.LastCandles(ctx, market.Binance, sym, market.Interval1m, 1)
			ok := err == nil && len(cs) == 1 && cs[0].OpenTime.Equal(lastCandle) && cs[0].Close.Equal(decimal.RequireFromString(trades[len(trades)-1].row["p"].(string)))
			if repair {
				ok = ok && strings.Contains(logs.String(), "trade gap repaired")
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ingest did not settle; logs:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := stop(); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		var all []market.Candle
		for _, iv := range ivs {
			cs, err := store.CandlesBetween(context.Background(), market.Binance, sym, iv, iv.Align(first), lastCandle.Add(time.Hour), 1000)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, cs...)
		}
		return all, logs.String()
	}

	want, _ := ingestFeed(t, false, whole)
	got, logs := ingestFeed(t, true, before, after)
	if !strings.Contains(logs, "trades missed") || !strings.Contains(logs, "from_id="+strconv.FormatInt(trades[dropAfter].id, 10)) {
		t.Fatalf("no gap reported from id %d:\n%s", trades[dropAfter].id, logs)
	}
	if a := asked(); len(a) < 2 || !strings.Contains(a[1], "fromId="+strconv.FormatInt(trades[dropAfter].id, 10)) {
		t.Fatalf("REST requests %q: want aggTrades from id %d, asked again after the 429", a, trades[dropAfter].id)
	}
	repaired := 0
	for i := range got {
		if got[i].Source == "repair" {
			repaired++
			got[i].Source = ""
		}
	}
	if repaired == 0 {
		t.Error("no candle is marked as repaired")
	}
	t.Logf("%d candles, %d of them rebuilt by the repair", len(want), repaired)
	if len(want) < 6 {
		t.Fatalf("the uninterrupted stream built only %d candles", len(want))
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })); diff != "" {
		t.Fatalf("candles after repair differ from the uninterrupted stream's (-want +got):\n%s", diff)
	}

	// Without repair the same outage leaves wrong candles: the comparison above can fail.
	unrepaired, _ := ingestFeed(t, false, before, after)
	if cmp.Equal(want, unrepaired, cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })) {
		t.Fatal("the outage without repair left the same candles: the test proves nothing")
	}
}
