package kraken

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
)

func v2Trades(typ string, ids ...int) string {
	var data []string
	for _, id := range ids {
		data = append(data, fmt.Sprintf(`{"symbol":"BTC/USD","side":"buy","price":95000.%d,"qty":0.5,"ord_type":"market","trade_id":%d,"timestamp":"2026-01-01T00:00:00.%06dZ"}`, id, id, id))
	}
	return `{"channel":"trade","type":"` + typ + `","data":[` + strings.Join(data, ",") + `]}`
}

func TestSourceV2Reconnects(t *testing.T) {
	srv := wsfeedtest.NewServer(t,
		[]wsfeedtest.Step{{AwaitSubscribe: 2}, {Send: v2Trades("snapshot", 1, 2)}, {Send: v2Trades("update", 3)},
			{Send: `{"channel":"heartbeat"}`}, {Send: "\x00\x01"}, {AwaitSubscribe: 3}, {Drop: true}},
		// The snapshot after the reconnect overlaps what was seen and fills trade 4.
		[]wsfeedtest.Step{{AwaitSubscribe: 2}, {Send: v2Trades("snapshot", 2, 3, 4)}, {Send: v2Trades("update", 5)}},
	)
	reg := prometheus.NewRegistry()
	src := New(Config{URL: srv.URL, Pairs: []string{"BTC/USD"}, PingEvery: 50 * time.Millisecond,
		Silence: time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, nil, reg)
	evs := wsfeedtest.Collect(t, src, 20*time.Second, func(ev ingest.Event) bool { return wsfeedtest.TradeID(ev) == "5" })
	var ids []string
	for _, ev := range evs {
		if ev.Kind() != ingest.KindTrade {
			t.Errorf("unexpected event %+v", ev)
		}
		ids = append(ids, ev.Trade().ID)
	}
	if got := strings.Join(ids, ","); got != "1,2,3,4,5" {
		t.Errorf("trade ids = %s, want 1,2,3,4,5", got)
	}
	c := srv.Conns()
	if !strings.Contains(c[0].Received[0], `"channel":"trade"`) || !strings.Contains(c[0].Received[2], `"method":"ping"`) {
		t.Errorf("first connection received %q, want subscriptions then a ping", c[0].Received)
	}
	if !strings.Contains(c[1].Received[0], `"symbol":["BTC/USD"]`) {
		t.Errorf("no resubscription: %q", c[1].Received)
	}
	if got := wsfeedtest.Metric(t, reg, "tickstash_feed_decode_errors_total", map[string]string{"reason": "json"}); got != 1 {
		t.Errorf("decode errors = %v, want 1", got)
	}
}
