package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// TestAnalyzeRoleAndJobsCommands writes candles into the real Redis, submits a job with
// `tickstash jobs submit`, lets a real `tickstash analyze` process run it against the
// real NATS, and reads the outcome with `jobs status`.
func TestAnalyzeRoleAndJobsCommands(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var candles []market.Candle
	for i := 0; i < 30; i++ {
		p := decimal.NewFromInt(int64(100 + i%7))
		candles = append(candles, market.Candle{Exchange: market.Kraken, Symbol: "ETH-USD", Interval: market.Interval1m,
			OpenTime: t0.Add(time.Duration(i) * time.Minute), Open: p, High: p, Low: p, Close: p,
			Volume: decimal.NewFromInt(1), QuoteVolume: p, Trades: 1, Closed: true})
	}
	if _, err := store.Write(ctx, &cache.Batch{Candles: candles}); err != nil {
		t.Fatal(err)
	}
	jobs := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		full := append([]string{"jobs", "--redis-url", redistest.URL(), "--key-prefix", prefix}, args...)
		code := Main(ctx, full, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := jobs("--exchange", "kraken", "--symbol", "eth-usd", "--interval", "1m", "submit")
	if code != 0 {
		t.Fatalf("jobs submit: exit %d: %s", code, errs)
	}
	id := strings.TrimSpace(out)

	streamArgs, _ := testAnalysisStream(t, prefix[3:])
	proc := startProcess(t, append([]string{"analyze", "--redis-url", redistest.URL(), "--nats-url", testenv.NATSURL(),
		"--key-prefix", prefix, "--admin-addr", "127.0.0.1:0", "--indicators", "sma:5 rsi:14 obv", "--concurrency", "2"}, streamArgs...)...)
	var st analysis.JobStatus
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errs = jobs("status", id)
		if code != 0 {
			t.Fatalf("jobs status: exit %d: %s", code, errs)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("jobs status printed %q: %v", out, err)
		}
		if st.State == analysis.JobDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done within 20s: %+v\nanalyze stderr:\n%s", st, proc.stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	res, err := q.LatestResult(ctx, market.Kraken, "ETH-USD", market.Interval1m)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"sma_5", "rsi_14", "obv"} {
		if _, ok := res.Values[col]; !ok {
			t.Errorf("result lacks %s: %+v", col, res.Values)
		}
	}
	if obv := res.Values["obv"]; obv == 0 {
		t.Errorf("obv = 0 over 30 candles: %+v", res.Values)
	}
	if code := proc.stop(t); code != 0 {
		t.Errorf("analyze exited %d:\n%s", code, proc.stderr())
	}

	code, out, _ = jobs("dead")
	if code != 0 || out != "" {
		t.Errorf("jobs dead: exit %d, %q; want nothing dead", code, out)
	}
	for _, bad := range [][]string{{"status"}, {"retry", "nope"}, {"--symbol", "BTC", "submit"}, {"frobnicate"}} {
		if code, _, errs := jobs(bad...); code == 0 {
			t.Errorf("jobs %v: exit 0; stderr %s", bad, errs)
		}
	}
}
