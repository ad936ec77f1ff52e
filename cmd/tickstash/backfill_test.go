package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// klinesServer answers /api/v3/klines in Binance's shape with deterministic candles of
// every bucket asked for (volume never zero), and records the startTime of each request.
// before, if set, runs first for the n-th request (1-based) and may answer instead
// (returning true).
type klinesServer struct {
	*httptest.Server
	mu     sync.Mutex
	starts []int64
	before func(n int, w http.ResponseWriter, r *http.Request) bool
}

func newKlinesServer(t *testing.T) *klinesServer {
	t.Helper()
	s := &klinesServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// kline is the deterministic candle opening at ms: prices around 100 with 2 to 8
// decimals, so a float64 round trip would show.
func kline(ms int64) (o, h, l, c, v, qv string, n int64) {
	k := ms / 60000
	base := decimal.New(100_00000000+(k%977)*1234567, -8)
	step := decimal.New(k%13+1, -3)
	vol := decimal.New(k%7+1, -4).Add(decimal.New(3, 0))
	return base.String(), base.Add(step).String(), base.Sub(step).String(), base.Add(step.Div(decimal.NewFromInt(2))).String(),
		vol.String(), vol.Mul(base).String(), k%50 + 1
}

func (s *klinesServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v3/klines" {
		http.Error(w, `{"code":-1100,"msg":"not here"}`, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	start, _ := strconv.ParseInt(q.Get("startTime"), 10, 64)
	end, _ := strconv.ParseInt(q.Get("endTime"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	iv, err := market.ParseInterval(q.Get("interval"))
	if err != nil || q.Get("symbol") == "" || limit <= 0 {
		http.Error(w, `{"code":-1121,"msg":"Invalid request."}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.starts = append(s.starts, start)
	n := len(s.starts)
	before := s.before
	s.mu.Unlock()
	if before != nil && before(n, w, r) {
		return
	}
	step := iv.Duration().Milliseconds()
	var rows [][]any
	for open := (start + step - 1) / step * step; open <= end && len(rows) < limit; open += step {
		o, h, l, c, v, qv, trades := kline(open)
		rows = append(rows, []any{open, o, h, l, c, v, open + step - 1, qv, trades, "0", "0", "0"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-MBX-USED-WEIGHT-1M", "2")
	_ = json.NewEncoder(w).Encode(rows)
}

func (s *klinesServer) requests() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.starts...)
}

// TestBackfillCommand backfills 2500 minutes of Binance candles against a local server
// in Binance's shape: a 429 with Retry-After first, then an interruption (the context
// ends mid-request, as at Ctrl-C) after two pages; the rerun continues from the
// checkpoint, and a third run stores nothing. The stored candles are exactly the
// server's, closed and marked as from REST.
func TestBackfillCommand(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	srv := newKlinesServer(t)
	const minutes = 2500
	to := time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	from := to.Add(-minutes * time.Minute)
	args := []string{"backfill", "--redis-url", redistest.URL(), "--key-prefix", prefix,
		"--source", "binance:BTCUSDT", "--intervals", "1m", "--rest-base-url", "binance=" + srv.URL,
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, http.StatusTooManyRequests)
			return true
		case 4: // two pages stored: Ctrl-C while the third is on its way
			cancel()
			<-r.Context().Done()
			return true
		}
		return false
	}
	var out, errb strings.Builder
	code := Main(ctx, args, strings.NewReader(""), &out, &errb)
	if code != 130 || !strings.Contains(errb.String(), "run the same command again to continue") {
		t.Fatalf("interrupted run: exit %d, stdout %q, stderr:\n%s", code, out.String(), errb.String())
	}
	if strings.Contains(errb.String(), "\r") {
		t.Errorf("a progress bar was drawn on a standard error that is no terminal:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "backfill progress") {
		t.Errorf("no progress logged:\n%s", errb.String())
	}
	first := srv.requests()
	if len(first) != 4 || first[0] != from.UnixMilli() || first[1] != from.UnixMilli() || first[2] != from.Add(1000*time.Minute).UnixMilli() {
		t.Fatalf("first run's requests start at %v; want the 429'd page asked again, then the next", first)
	}

	srv.before = nil
	code, stdout, stderr := run(t, "", args...)
	if code != 0 || !strings.Contains(stdout, "(resumed)") {
		t.Fatalf("rerun: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	second := srv.requests()[4:]
	if len(second) != 1 || second[0] != from.Add(2000*time.Minute).UnixMilli() {
		t.Fatalf("the rerun asked from %v, want only the third page from %d", second, from.Add(2000*time.Minute).UnixMilli())
	}
	if want := fmt.Sprintf("binance BTC-USDT 1m: %d candles fetched, %d stored, 0 already there (resumed)", minutes-2000, minutes-2000); !strings.Contains(stdout, want) {
		t.Errorf("rerun says %q, want %q", stdout, want)
	}

	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	got, err := store.CandlesBetween(context.Background(), market.Binance, "BTC-USDT", market.Interval1m, from, to, 2*minutes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != minutes {
		t.Fatalf("%d candles stored, want %d", len(got), minutes)
	}
	for i, c := range got {
		open := from.Add(time.Duration(i) * time.Minute)
		o, h, l, cl, v, qv, n := kline(open.UnixMilli())
		want := []string{o, h, l, cl, v, qv}
		have := []decimal.Decimal{c.Open, c.High, c.Low, c.Close, c.Volume, c.QuoteVolume}
		for j := range want {
			if !have[j].Equal(decimal.RequireFromString(want[j])) {
				t.Fatalf("candle %s field %d = %s, want %s", market.FormatTime(open), j, have[j], want[j])
			}
		}
		if !c.OpenTime.Equal(open) || c.Trades != n || !c.Closed || c.Source != "rest" || c.Interval != market.Interval1m {
			t.Fatalf("candle %d: %+v, want open %s, %d trades, closed, src rest", i, c, market.FormatTime(open), n)
		}
	}
	if keys := redistest.Keys(t, rdb, prefix+":*backfill*"); len(keys) != 0 { // every master of a cluster
		t.Errorf("checkpoints left after completion: %v", keys)
	}

	code, stdout, stderr = run(t, "", args...)
	if want := fmt.Sprintf("%d candles fetched, 0 stored, %d already there\n", minutes, minutes); code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("third run: exit %d, stdout %q (want %q), stderr:\n%s", code, stdout, want, stderr)
	}
}

// TestBackfillUsageErrors: bad input is named, with exit status 2, before Redis is
// contacted (the Redis URL points nowhere).
func TestBackfillUsageErrors(t *testing.T) {
	base := []string{"backfill", "--redis-url", "redis://127.0.0.1:1/0"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "name markets with --source"},
		{[]string{"--source", "binance"}, `--source "binance": want EXCHANGE:MARKET`},
		{[]string{"--source", "synthetic:X"}, `"synthetic" has no REST history`},
		{[]string{"--source", "binance:BTCXYZ"}, "no known quote asset"},
		{[]string{"--source", "binance:BTCUSDT", "--intervals", "2m"}, `--intervals "2m"`},
		{[]string{"--source", "binance:BTCUSDT", "--since", "-3d"}, `--since "-3d"`},
		{[]string{"--source", "binance:BTCUSDT", "--since", "1d", "--from", "2024-01-01"}, "--since and --from exclude each other"},
		{[]string{"--source", "binance:BTCUSDT", "--from", "yesterday"}, `--from "yesterday": want RFC 3339`},
		{[]string{"--source", "binance:BTCUSDT", "--from", "2024-02-01", "--to", "2024-01-01"}, "is empty"},
		{[]string{"--source", "binance:BTCUSDT", "--rest-base-url", "bitstamp=http://x"}, `unknown exchange "bitstamp"`},
		{[]string{"--source", "binance:BTCUSDT", "--rest-base-url", "binance=ftp://x"}, "is not an http(s) URL"},
		{[]string{"--source", "coinbase-exchange:BTC-USD", "--intervals", "1s"}, "coinbase-exchange offers no interval that builds 1s"},
		{[]string{"--source", "coinbase:BTC-USD", "--from-trades"}, "--from-trades: coinbase pages its trades by id only"},
		{[]string{"ingest", "--rest-base-url", "kraken"}, `--rest-base-url "kraken": want exchange=URL`},
		{[]string{"run", "--backfill-candles", "-1"}, "--backfill-candles -1: want 0"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(base, tt.args...)
			if len(tt.args) > 0 && (tt.args[0] == "ingest" || tt.args[0] == "run") {
				args = tt.args
			}
			code, _, errs := run(t, "", args...)
			if code != 2 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errs, tt.want)
			}
		})
	}
}

// TestBackfillProgressBar: on a terminal the backfill bar shows counts and an ETA.
func TestBackfillProgressBar(t *testing.T) {
	tty, ok := openPTY(t)
	if !ok {
		return
	}
	bar := newProgressBar(tty, "backfill")
	if bar == nil {
		t.Fatal("newProgressBar(pseudo-terminal) = nil, want a bar")
	}
	var drawn strings.Builder
	bar.w = &drawn
	report := backfillProgress(bar, nil, "binance BTC-USDT 1m")
	report(history.Progress{Done: 0, Total: 2000})
	report(history.Progress{Done: 1000, Total: 2000, ETA: 90 * time.Second})
	bar.done()
	got := drawn.String()
	for _, want := range []string{"\rbackfill binance BTC-USDT 1m [", "0/2000 candles  ETA --", "]  50%  1000/2000 candles  ETA 1m30s"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar drew %q, want %q in it", got, want)
		}
	}
}

// TestIngestBackfillsOnStart: ingest with a live source first fetches the candles the
// analysis needs (--backfill-candles per interval) from the exchange's REST history,
// then queues one analysis job per market and interval.
func TestIngestBackfillsOnStart(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1") // the live feed must not reach the real Binance
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	srv := newKlinesServer(t)
	stderr, stop := started(t, "ingest", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--admin-addr", "",
		"--source", "binance:BTCUSDT", "--intervals", "1m,1h", "--backfill-candles", "50", "--rest-base-url", "binance="+srv.URL)
	find(t, stderr, `(backfill on start done)`)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	for _, iv := range []market.Interval{market.Interval1m, market.Interval1h} {
		cs, err := store.LastCandles(context.Background(), market.Binance, "BTC-USDT", iv, 100)
		if err != nil || len(cs) < 49 || len(cs) > 50 {
			t.Fatalf("%s: %d candles stored (%v), want the 50 asked for (49 if a bucket ended meanwhile)", iv, len(cs), err)
		}
		for _, c := range cs {
			if !c.Closed || c.Source != "rest" {
				t.Fatalf("%s candle %+v: want closed, from rest", iv, c)
			}
		}
	}
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	if n, err := q.Length(context.Background()); err != nil || n != 2 {
		t.Errorf("analysis queue holds %d jobs (%v), want one per market and interval: 2", n, err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
}
