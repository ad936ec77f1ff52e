package binance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/market"
)

func tradeMsg(id int) string {
	return fmt.Sprintf(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1767225600%03d,"s":"BTCUSDT","t":%d,"p":"95000.%02d","q":"0.001","T":1767225600%03d,"m":%v,"M":true}}`,
		id, id, id, id, id%2 == 0)
}

// TestSourceSurvivesTheNetwork plays a feed that drops, repeats, skips, goes silent,
// pings, sends garbage and announces a shutdown, and checks that every trade sent
// arrives once, in order, with the gap reported.
func TestSourceSurvivesTheNetwork(t *testing.T) {
	srv := wsfeedtest.NewServer(t,
		[]wsfeedtest.Step{{Send: tradeMsg(1)}, {Send: tradeMsg(2)}, {Send: `{"stream":"x","data":{"e":`}, {Send: "garbage"},
			{Send: tradeMsg(3)}, {Drop: true}},
		[]wsfeedtest.Step{{Send: tradeMsg(3)}, {Send: tradeMsg(4)}, {Send: tradeMsg(6)}, {Silence: true}},
		[]wsfeedtest.Step{{Ping: true}, {Send: tradeMsg(7)}, {Send: `{"stream":"btcusdt@trade","data":{"e":"serverShutdown","E":1767225600000}}`}, {Silence: true}},
		[]wsfeedtest.Step{{Send: tradeMsg(8)}},
	)
	reg := prometheus.NewRegistry()
	src := New(Config{URL: srv.URL + "/stream", Symbols: []string{"BTCUSDT"}, Streams: []string{"trade"},
		Silence: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, nil, reg)
	evs := wsfeedtest.Collect(t, src, 20*time.Second, func(ev ingest.Event) bool {
		return wsfeedtest.TradeID(ev) == "8"
	})

	var ids []string
	var gaps []ingest.Gap
	for _, ev := range evs {
		switch ev.Kind() {
		case ingest.KindTrade:
			ids = append(ids, ev.Trade().ID)
			if ev.Trade().Symbol != "BTC-USDT" || ev.Trade().Exchange != market.Binance {
				t.Errorf("trade %+v", *ev.Trade())
			}
		case ingest.KindGap:
			gaps = append(gaps, *ev.Gap())
		}
	}
	if got := strings.Join(ids, ","); got != "1,2,3,4,6,7,8" {
		t.Errorf("trade ids = %s, want 1,2,3,4,6,7,8 (3 once)", got)
	}
	if len(gaps) != 1 || gaps[0].FromID != "5" || gaps[0].ToID != "5" || gaps[0].Missing != 1 || gaps[0].Symbol != "BTC-USDT" {
		t.Errorf("gaps = %+v, want one of trade 5", gaps)
	}
	conns := srv.Conns()
	if len(conns) < 4 {
		t.Fatalf("%d connections, want 4", len(conns))
	}
	for i, c := range conns[:4] {
		if c.URL != "/stream?streams=btcusdt@trade" {
			t.Errorf("connection %d dialled %q", i, c.URL)
		}
	}
	if conns[2].PingErr != nil {
		t.Errorf("ping not answered: %v", conns[2].PingErr)
	}
	ex := map[string]string{"exchange": "binance"}
	for name, want := range map[string]float64{
		"tickstash_feed_reconnects_total": 3,
		"tickstash_feed_gaps_total":       1,
		"tickstash_feed_duplicates_total": 1,
		"tickstash_feed_messages_total":   11,
	} {
		if got := wsfeedtest.Metric(t, reg, name, ex); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := wsfeedtest.Metric(t, reg, "tickstash_feed_decode_errors_total", map[string]string{"exchange": "binance", "reason": "json"}); got != 2 {
		t.Errorf("decode errors (json) = %v, want 2", got)
	}
	if got := wsfeedtest.Metric(t, reg, "tickstash_feed_lag_seconds", ex); got != 7 {
		t.Errorf("lag observations = %v, want 7", got)
	}
}
