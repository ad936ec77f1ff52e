package coinbase

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
)

func advTrade(ids ...int) string {
	var trades []string
	for _, id := range ids {
		trades = append(trades, fmt.Sprintf(`{"trade_id":"%d","product_id":"BTC-USD","price":"95000.%d","size":"0.1","side":"BUY","time":"2026-01-01T00:00:0%d.5Z"}`, id, id, id%10))
	}
	return `{"channel":"market_trades","client_id":"","timestamp":"2026-01-01T00:00:00Z","sequence_num":0,"events":[{"type":"update","trades":[` +
		strings.Join(trades, ",") + `]}]}`
}

func exMatch(id int) string {
	return fmt.Sprintf(`{"type":"match","trade_id":%d,"maker_order_id":"a","taker_order_id":"b","side":"sell","size":"1.5","price":"95000.%d","product_id":"BTC-USD","sequence":%d,"time":"2026-01-01T00:00:00.%06dZ"}`, id, id, id, id)
}

func trades(evs []ingest.Event) (ids string, gaps []ingest.Gap) {
	var s []string
	for _, ev := range evs {
		switch ev.Kind() {
		case ingest.KindTrade:
			s = append(s, ev.Trade().ID)
		case ingest.KindGap:
			gaps = append(gaps, *ev.Gap())
		}
	}
	return strings.Join(s, ","), gaps
}

func TestAdvancedSourceReconnects(t *testing.T) {
	// A snapshot lists the newest trade first; a reconnect's snapshot overlaps.
	srv := wsfeedtest.NewServer(t,
		[]wsfeedtest.Step{{AwaitSubscribe: 3}, {Send: advTrade(3, 2, 1)}, {Send: `{"channel":"market_trades","events":[{"trades":[{"price":1`}, {Drop: true}},
		[]wsfeedtest.Step{{AwaitSubscribe: 3}, {Send: advTrade(3, 2)}, {Send: advTrade(4)}, {Send: advTrade(7)}, {Silence: true}},
		[]wsfeedtest.Step{{AwaitSubscribe: 3}, {Send: advTrade(8)}},
	)
	reg := prometheus.NewRegistry()
	src := New(Config{URL: srv.URL, Products: []string{"BTC-USD"},
		Silence: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, nil, reg)
	evs := wsfeedtest.Collect(t, src, 20*time.Second, func(ev ingest.Event) bool { return wsfeedtest.TradeID(ev) == "8" })
	ids, gaps := trades(evs)
	if ids != "1,2,3,4,7,8" {
		t.Errorf("trade ids = %s, want 1,2,3,4,7,8", ids)
	}
	if len(gaps) != 1 || gaps[0].FromID != "5" || gaps[0].ToID != "6" || gaps[0].Missing != 2 {
		t.Errorf("gaps = %+v, want 5..6", gaps)
	}
	conns := srv.Conns()
	for i, c := range conns[:3] {
		if len(c.Received) != 3 || !strings.Contains(c.Received[1], `"channel":"market_trades"`) ||
			!strings.Contains(c.Received[1], `"product_ids":["BTC-USD"]`) {
			t.Errorf("connection %d: subscriptions %q", i, c.Received)
		}
	}
	if got := wsfeedtest.Metric(t, reg, "tickstash_feed_reconnects_total", nil); got != 2 {
		t.Errorf("reconnects = %v, want 2", got)
	}
}

func TestExchangeSourceReconnects(t *testing.T) {
	srv := wsfeedtest.NewServer(t,
		[]wsfeedtest.Step{{AwaitSubscribe: 1}, {Send: exMatch(10)}, {Send: exMatch(11)}, {Drop: true}},
		// last_match repeats the last trade on subscribing.
		[]wsfeedtest.Step{{AwaitSubscribe: 1}, {Send: strings.Replace(exMatch(11), `"match"`, `"last_match"`, 1)},
			{Send: `{"type":"heartbeat","sequence":1,"last_trade_id":11,"product_id":"BTC-USD","time":"2026-01-01T00:00:00Z"}`},
			{Send: exMatch(13)}},
	)
	src := New(Config{API: ExchangeFeed, URL: srv.URL, Products: []string{"BTC-USD"},
		Silence: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, nil, prometheus.NewRegistry())
	evs := wsfeedtest.Collect(t, src, 20*time.Second, func(ev ingest.Event) bool { return wsfeedtest.TradeID(ev) == "13" })
	ids, gaps := trades(evs)
	if ids != "10,11,13" || len(gaps) != 1 || gaps[0].FromID != "12" {
		t.Errorf("trade ids = %s, gaps %+v; want 10,11,13 and a gap at 12", ids, gaps)
	}
	if c := srv.Conns(); !strings.Contains(c[1].Received[0], `"channels":["matches","ticker","heartbeat"]`) {
		t.Errorf("resubscription = %q", c[1].Received)
	}
}
