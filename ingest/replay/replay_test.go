package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/market"
)

func run(t *testing.T, cfg Config, reg prometheus.Registerer) []ingest.Event {
	t.Helper()
	out := make(chan ingest.Event, 1<<16)
	if err := New(cfg, nil, reg).Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var evs []ingest.Event
	for ev := range out {
		evs = append(evs, ev)
	}
	return evs
}

func TestReplayEveryCapture(t *testing.T) {
	tests := []struct {
		file                   string
		exchange               market.Exchange
		trades, quotes, candle int
	}{
		{"binance-spot-2021.jsonl", market.Binance, 2, 84, 2},
		{"binance-us-2021.jsonl", market.BinanceUS, 11, 128, 5},
		{"coinbase-exchange-2021.jsonl", market.Coinbase, 107, 107, 0},
		{"kraken-v1-2021.jsonl", market.Kraken, 10, 18, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var calls []int64
			path := capturetest.Path(t, tt.file)
			evs := run(t, Config{Files: []string{path}, Progress: func(read, total int64) { calls = append(calls, read, total) },
				ProgressEvery: 100}, reg)
			got := map[ingest.EventKind]int{}
			for _, ev := range evs {
				got[ev.Kind()]++
			}
			want := map[ingest.EventKind]int{ingest.KindTrade: tt.trades, ingest.KindQuote: tt.quotes}
			if tt.candle > 0 {
				want[ingest.KindCandle] = tt.candle
			}
			if tt.exchange == market.Coinbase {
				// Trade ids of SKL-BTC and others jump between matches: the capture
				// subscribed mid-stream, and last_match precedes the first match.
				delete(got, ingest.KindGap)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			st, _ := os.Stat(path)
			if n := len(calls); n < 2 || calls[n-2] != st.Size() || calls[n-1] != st.Size() {
				t.Errorf("progress calls %v, want to end at %d/%d", calls, st.Size(), st.Size())
			}
			if got := wsfeedtest.Metric(t, reg, "tickstash_feed_decode_errors_total", nil); got > 0 {
				t.Errorf("%v decode errors", got)
			}
		})
	}
}

func TestReplayZstdAndSpeed(t *testing.T) {
	// The first 40 lines of the Binance.US capture span about 3.3 s of recorded time.
	src, err := os.ReadFile(capturetest.Path(t, "binance-us-2021.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(src, []byte("\n"))[:40]
	var first, last float64
	for _, l := range lines[2:] {
		var rec struct{ TS float64 }
		json.Unmarshal(l, &rec)
		if first == 0 {
			first = rec.TS
		}
		last = rec.TS
	}
	span := time.Duration((last - first) * float64(time.Second))

	path := filepath.Join(t.TempDir(), "us.jsonl.zst")
	f, _ := os.Create(path)
	zw, _ := zstd.NewWriter(f)
	zw.Write(bytes.Join(lines, nil))
	zw.Close()
	f.Close()

	start := time.Now()
	fast := run(t, Config{Files: []string{path}}, nil)
	if el := time.Since(start); el > span/4 {
		t.Errorf("max speed took %v for %v of capture", el, span)
	}
	start = time.Now()
	slow := run(t, Config{Files: []string{path}, Speed: 4}, nil)
	el := time.Since(start)
	if el < span/4-50*time.Millisecond || el > span/4+time.Second {
		t.Errorf("speed 4 took %v, want about %v", el, span/4)
	}
	if len(fast) == 0 || !cmp.Equal(wsfeedtest.Records(fast), wsfeedtest.Records(slow)) {
		t.Errorf("speed changed the events: %d vs %d", len(fast), len(slow))
	}
}

func TestDryRunJSON(t *testing.T) {
	var buf bytes.Buffer
	src := New(Config{Files: []string{capturetest.Path(t, "binance-spot-2021.jsonl")}}, nil, nil)
	if err := DryRun(context.Background(), src, &buf); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 88 {
		t.Fatalf("%d lines, want 88 (84 quotes, 2 trades, 2 candles)", len(lines))
	}
	want := map[string]bool{
		`{"type":"quote","exchange":"binance","symbol":"NKN-USDT","bid":"0.3521","bid_qty":"672","ask":"0.3526","ask_qty":"3199","time":"2021-10-12T00:28:33.377805Z"}`:                                                                                                                                                        true,
		`{"type":"trade","exchange":"binance","symbol":"NKN-USDT","id":"15683430","price":"0.3528","qty":"58","side":"buy","time":"2021-10-12T00:28:43.963Z"}`:                                                                                                                                                                 true,
		`{"type":"candle","exchange":"binance","symbol":"NKN-USDT","interval":"1m","open_time":"2021-10-12T00:28:00Z","close_time":"2021-10-12T00:29:00Z","open":"0.3527","high":"0.3528","low":"0.3522","close":"0.3528","volume":"25877","quote_volume":"9116.046","trades":30,"vwap":"0.35228372686169185","closed":false}`: true,
	}
	for _, l := range lines {
		delete(want, l)
		// Every trade line reads back as a market.Trade (the `tickstash candles` input).
		if strings.HasPrefix(l, `{"type":"trade"`) {
			var tr market.Trade
			if err := json.Unmarshal([]byte(l), &tr); err != nil {
				t.Errorf("%s: %v", l, err)
			}
		}
	}
	for l := range want {
		t.Errorf("missing line %s", l)
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"t":"header","format":2,"exchange":"NOPE"}`+"\n"+`{"t":"recv","conn":"a","ts":1,"data":"{}"}`+"\n"), 0o644)
	out := make(chan ingest.Event, 1)
	for _, files := range [][]string{nil, {filepath.Join(dir, "missing.jsonl")}, {bad}} {
		if err := New(Config{Files: files}, nil, nil).Run(context.Background(), out); err == nil {
			t.Errorf("%v: no error", files)
		}
	}
}
