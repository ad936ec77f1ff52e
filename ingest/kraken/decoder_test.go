package kraken

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestDecodeV1Capture(t *testing.T) {
	dec := NewDecoder()
	var evs []ingest.Draft
	for _, rec := range capturetest.Recv(t, "kraken-v1-2021.jsonl") {
		var err error
		if evs, err = dec.Decode(evs, rec.Data, rec.Time); err != nil {
			t.Fatalf("%s: %v", rec.Data, err)
		}
	}
	var trades []market.Trade
	var quotes []market.Quote
	for _, ev := range evs {
		switch ev.Kind {
		case ingest.KindTrade:
			trades = append(trades, ev.Trade)
		case ingest.KindQuote:
			quotes = append(quotes, ev.Quote)
		default:
			t.Errorf("unexpected event %+v", ev)
		}
	}
	// 7 trade messages holding 10 trades, 18 ticker messages; book-1000 and heartbeats
	// are ignored.
	if len(trades) != 10 || len(quotes) != 18 {
		t.Errorf("%d trades and %d quotes, want 10 and 18", len(trades), len(quotes))
	}
	// [993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]
	want := market.Trade{Exchange: market.Kraken, Symbol: "XMR-USD", Price: d("354.11000000"), Qty: d("0.89594024"),
		Side: market.Sell, Time: time.Unix(1618678142, 557535000).UTC(), ReceivedAt: time.Unix(1618678142, 592855000).UTC()}
	if diff := cmp.Diff(want, trades[0]); diff != "" {
		t.Errorf("first trade (-want +got):\n%s", diff)
	}
	// [468,{"a":["56218.30000",0,"0.13690578"],"b":["56119.10000",0,"0.03333108"],...},"ticker","XBT/CHF"]
	for _, q := range quotes {
		if q.Symbol == "BTC-CHF" {
			if !q.Ask.Equal(d("56218.3")) || !q.AskQty.Equal(d("0.13690578")) || !q.Bid.Equal(d("56119.1")) ||
				!q.BidQty.Equal(d("0.03333108")) {
				t.Errorf("XBT/CHF ticker = %+v", q)
			}
			return
		}
	}
	t.Error("no XBT/CHF ticker: the XBT→BTC alias was not applied")
}

// v2 messages in the documented shapes; prices are JSON numbers.
const (
	v2Trade     = `{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":95000.1,"qty":0.00012345,"ord_type":"market","trade_id":4665906,"timestamp":"2026-01-01T00:00:00.708706Z"},{"symbol":"BTC/USD","side":"buy","price":95000.2,"qty":1.5e-05,"ord_type":"limit","trade_id":4665907,"timestamp":"2026-01-01T00:00:00.708706Z"}]}`
	v2Ticker    = `{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17}]}`
	v2Heartbeat = `{"channel":"heartbeat"}`
	v2Pong      = `{"method":"pong","req_id":101,"time_in":"2026-01-01T00:00:00.1Z","time_out":"2026-01-01T00:00:00.2Z"}`
	v2Status    = `{"channel":"status","data":[{"api_version":"v2","connection_id":1,"system":"online","version":"2.0.0"}],"type":"update"}`
	v2SubReply  = `{"method":"subscribe","result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2026-01-01T00:00:00Z","time_out":"2026-01-01T00:00:00Z"}`
)

func TestDecodeV2(t *testing.T) {
	recv := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	dec := NewDecoder()
	var evs []ingest.Draft
	for _, m := range []string{v2Status, v2SubReply, v2Trade, v2Ticker, v2Heartbeat, v2Pong} {
		var err error
		if evs, err = dec.Decode(evs, []byte(m), recv); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 708706000, time.UTC)
	want := []ingest.Draft{
		{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Kraken, Symbol: "BTC-USD", ID: "4665906",
			Price: d("95000.1"), Qty: d("0.00012345"), Side: market.Sell, Time: ts, ReceivedAt: recv}},
		{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Kraken, Symbol: "BTC-USD", ID: "4665907",
			Price: d("95000.2"), Qty: d("0.000015"), Side: market.Buy, Time: ts, ReceivedAt: recv}},
		{Kind: ingest.KindQuote, Quote: market.Quote{Exchange: market.Kraken, Symbol: "ALGO-USD", Bid: d("0.10025"),
			BidQty: d("740.0"), Ask: d("0.10036"), AskQty: d("1361.44813783"), Time: recv, ReceivedAt: recv}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The exact text, not a float64 rounding of it.
	if s := evs[1].Trade.Qty.String(); s != "0.000015" {
		t.Errorf("qty 1.5e-05 decoded as %s", s)
	}
}

func TestDecodeErrors(t *testing.T) {
	recv := time.Now()
	for msg, reason := range map[string]string{
		`{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":"95000.1","qty":1,"trade_id":1,"timestamp":"2026-01-01T00:00:00Z"}]}`: wsfeed.ReasonJSON,
		`{"channel":"trade","type":"update","data":[{"symbol":"BTCUSD","side":"sell","price":1,"qty":1,"trade_id":1,"timestamp":"2026-01-01T00:00:00Z"}]}`:          wsfeed.ReasonSymbol,
		`{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"up","price":1,"qty":1,"trade_id":1,"timestamp":"2026-01-01T00:00:00Z"}]}`:           wsfeed.ReasonField,
		`{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":1,"qty":1,"trade_id":1,"timestamp":"soon"}]}`:                          wsfeed.ReasonTime,
		`{"channel":"mystery"}`:                               wsfeed.ReasonType,
		`{"error":"Currency pair not supported"}`:             wsfeed.ReasonType,
		`[1,[["1","1","1.5","x","l",""]],"trade","XBT/USD"]`:  wsfeed.ReasonField,
		`[1,[["1","1","soon","b","l",""]],"trade","XBT/USD"]`: wsfeed.ReasonTime,
		`[1,[["1","1","1.5","b","l",""]],"trades","XBT/USD"]`: wsfeed.ReasonType,
		`[1,[["1","1","1.5","b","l",""]],"trade"]`:            wsfeed.ReasonJSON,
		`[1,[["1","1","1.5","b","l",""]],"trade",7]`:          wsfeed.ReasonJSON,
		`"hello"`: wsfeed.ReasonJSON,
	} {
		evs, err := NewDecoder().Decode(nil, []byte(msg), recv)
		if err == nil || wsfeed.Reason(err) != reason || len(evs) != 0 {
			t.Errorf("%s: %d events, err %v; want reason %q", msg, len(evs), err, reason)
		}
	}
}

func TestSymbol(t *testing.T) {
	for in, want := range map[string]market.Symbol{"XBT/USD": "BTC-USD", "BTC/USD": "BTC-USD", "XDG/EUR": "DOGE-EUR",
		"ETH/XBT": "ETH-BTC", "ksm/xbt": "KSM-BTC"} {
		if got, err := Symbol(in); err != nil || got != want {
			t.Errorf("Symbol(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
