package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// capturePath returns a recorded capture of ../shared/testdata.
func capturePath(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "captures", name)
}

// TestReplayIntoRedis replays a real Coinbase capture into the real Redis and reads back
// tickers, trades and candles, checking them against the same capture's dry run.
func TestReplayIntoRedis(t *testing.T) {
	path := capturePath(t, "coinbase-exchange-2021.jsonl")
	var dry, errb bytes.Buffer
	if code := Main(context.Background(), []string{"replay", "--dry-run", path}, strings.NewReader(""), &dry, &errb); code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errb.String())
	}
	// What the capture holds, per market: trade count, last trade, last quote.
	trades := map[market.Symbol][]market.Trade{}
	quotes := map[market.Symbol]market.Quote{}
	sc := bufio.NewScanner(&dry)
	for sc.Scan() {
		switch kind, _ := recordType(sc.Bytes()); kind {
		case "trade":
			var tr market.Trade
			if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
				t.Fatal(err)
			}
			trades[tr.Symbol] = append(trades[tr.Symbol], tr)
		case "quote":
			var q market.Quote
			if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
				t.Fatal(err)
			}
			quotes[q.Symbol] = q
		}
	}
	if len(trades) == 0 || len(quotes) == 0 {
		t.Fatalf("dry run printed %d markets with trades, %d with quotes", len(trades), len(quotes))
	}

	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	errb.Reset()
	args := []string{"replay", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--intervals", "1m", path}
	if code := Main(context.Background(), args, strings.NewReader(""), &dry, &errb); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "\r") || strings.Contains(errb.String(), "%") {
		t.Errorf("progress drawn on a standard error that is no terminal:\n%s", errb.String())
	}
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	ctx := context.Background()
	for sym, ts := range trades {
		last := ts[len(ts)-1]
		tk, err := store.Ticker(ctx, market.Coinbase, sym)
		if err != nil {
			t.Fatalf("%s: %v", sym, err)
		}
		if !tk.Last.Equal(last.Price) || tk.LastTradeID != last.ID || tk.LastSide != last.Side {
			t.Errorf("%s ticker last %s id %s side %s; capture's last trade %s id %s side %s",
				sym, tk.Last, tk.LastTradeID, tk.LastSide, last.Price, last.ID, last.Side)
		}
		if q, ok := quotes[sym]; ok && (!tk.Bid.Equal(q.Bid) || !tk.Ask.Equal(q.Ask)) {
			t.Errorf("%s ticker bid/ask %s/%s; capture's last quote %s/%s", sym, tk.Bid, tk.Ask, q.Bid, q.Ask)
		}
		n := rdb.XLen(ctx, store.Keys().Trades(market.Coinbase, sym)).Val()
		if n != int64(len(ts)) {
			t.Errorf("%s: %d trades in the stream, %d in the capture", sym, n, len(ts))
		}
		// The candles hold every trade: their volumes add up to the capture's.
		cs, err := store.LastCandles(ctx, market.Coinbase, sym, market.Interval1m, 1000)
		if err != nil || len(cs) == 0 {
			t.Fatalf("%s candles: %v, %d", sym, err, len(cs))
		}
		var vol, want decimal.Decimal
		var count int64
		for _, c := range cs {
			if !c.Closed {
				t.Errorf("%s candle %s not closed at the end of a replay", sym, c.OpenTime)
			}
			vol = vol.Add(c.Volume)
			count += c.Trades
		}
		for _, tr := range ts {
			want = want.Add(tr.Qty)
		}
		if !vol.Equal(want) || count != int64(len(ts)) {
			t.Errorf("%s candles: volume %s over %d trades; capture: %s over %d", sym, vol, count, want, len(ts))
		}
	}

	// Replaying again changes nothing.
	before := rdb.XLen(ctx, store.Keys().Trades(market.Coinbase, "SKL-USD")).Val()
	errb.Reset()
	if code := Main(context.Background(), args, strings.NewReader(""), &dry, &errb); code != 0 {
		t.Fatalf("second replay: exit %d: %s", code, errb.String())
	}
	if after := rdb.XLen(ctx, store.Keys().Trades(market.Coinbase, "SKL-USD")).Val(); after != before {
		t.Errorf("second replay changed the stream: %d → %d", before, after)
	}
	if !strings.Contains(errb.String(), "replay: 0 trades") {
		t.Errorf("second replay wrote trades again: %s", errb.String())
	}
}
