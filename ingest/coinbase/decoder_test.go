package coinbase

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

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDecodeExchangeCapture(t *testing.T) {
	dec := NewExchangeDecoder()
	var evs []ingest.Draft
	for _, rec := range capturetest.Recv(t, "coinbase-exchange-2021.jsonl") {
		var err error
		if evs, err = dec.Decode(evs, rec.Data, rec.Time); err != nil {
			t.Fatalf("%s: %v", rec.Data, err)
		}
	}
	counts := map[ingest.EventKind]int{}
	for _, ev := range evs {
		counts[ev.Kind]++
	}
	// match 97 + last_match 10 trades, ticker 107 quotes; l2update, snapshot and
	// subscriptions are ignored.
	want := map[ingest.EventKind]int{ingest.KindTrade: 107, ingest.KindQuote: 107}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("event counts (-want +got):\n%s", diff)
	}
	found := 0
	for _, ev := range evs {
		switch {
		case ev.Kind == ingest.KindTrade && ev.Trade.ID == "280232":
			// {"type":"match","trade_id":280232,...,"side":"sell","size":"985","price":"0.00001305",
			//  "product_id":"SKL-BTC","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}
			// A resting sell was hit: the taker bought.
			want := market.Trade{Exchange: market.Coinbase, Symbol: "SKL-BTC", ID: "280232", Price: d("0.00001305"),
				Qty: d("985"), Side: market.Buy, Time: at("2021-04-17T16:43:37.089723Z"),
				ReceivedAt: time.Unix(1618677817, 129516100).UTC()}
			if diff := cmp.Diff(want, ev.Trade); diff != "" {
				t.Errorf("match 280232 (-want +got):\n%s", diff)
			}
			found++
		case ev.Kind == ingest.KindTrade && ev.Trade.ID == "82007":
			// last_match SKL-GBP "side":"buy","size":"1008.2","price":"0.5752": the taker sold.
			if ev.Trade.Side != market.Sell || !ev.Trade.Qty.Equal(d("1008.2")) || ev.Trade.Symbol != "SKL-GBP" {
				t.Errorf("last_match 82007 = %+v", ev.Trade)
			}
			found++
		case ev.Kind == ingest.KindQuote && ev.Quote.Symbol == "BAND-GBP" && found < 3 && ev.Quote.Time.Equal(at("2021-04-17T16:43:30.244075Z")):
			// {"type":"ticker",...,"product_id":"BAND-GBP",...,"best_bid":"14.7550","best_ask":"14.8060",
			//  "time":"2021-04-17T16:43:30.244075Z"} — no sizes in 2021.
			if !ev.Quote.Bid.Equal(d("14.755")) || !ev.Quote.Ask.Equal(d("14.806")) || !ev.Quote.BidQty.IsZero() {
				t.Errorf("BAND-GBP ticker = %+v", ev.Quote)
			}
			found++
		}
	}
	if found != 3 {
		t.Errorf("found %d of the 3 spot-checked events", found)
	}
}

// Advanced Trade messages in the documented shapes.
const (
	advTradesSnapshot = `{"channel":"market_trades","client_id":"","timestamp":"2026-01-01T00:00:01.123456789Z","sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"1002","product_id":"BTC-USD","price":"95000.01","size":"0.00100000","side":"SELL","time":"2026-01-01T00:00:00.9Z"},{"trade_id":"1001","product_id":"BTC-USD","price":"95000.00","size":"0.5","side":"BUY","time":"2026-01-01T00:00:00.5Z"}]}]}`
	advTradesUpdate   = `{"channel":"market_trades","client_id":"","timestamp":"2026-01-01T00:00:02Z","sequence_num":1,"events":[{"type":"update","trades":[{"trade_id":"1003","product_id":"ETH-USD","price":"3300.5","size":"2","side":"BUY","time":"2026-01-01T00:00:01.999999Z"}]}]}`
	advTicker         = `{"channel":"ticker","client_id":"","timestamp":"2026-01-01T00:00:03.5Z","sequence_num":2,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"95000.01","volume_24_h":"16038.28770938","low_24_h":"94000","high_24_h":"96000","low_52_w":"15460","high_52_w":"108240","price_percent_chg_24_h":"-4.1","best_bid":"95000.00","best_bid_quantity":"0.25","best_ask":"95000.02","best_ask_quantity":"1.5"}]}]}`
	advHeartbeat      = `{"channel":"heartbeats","client_id":"","timestamp":"2026-01-01T00:00:04Z","sequence_num":3,"events":[{"current_time":"2026-01-01 00:00:04.1 +0000 UTC m=+91717.525857105","heartbeat_counter":"3049"}]}`
	advSubscriptions  = `{"channel":"subscriptions","client_id":"","timestamp":"2026-01-01T00:00:00Z","sequence_num":0,"events":[{"subscriptions":{"market_trades":["BTC-USD"]}}]}`
)

func TestDecodeAdvanced(t *testing.T) {
	recv := at("2026-01-01T00:00:05Z")
	dec := NewAdvancedDecoder()
	var evs []ingest.Draft
	for _, m := range []string{advSubscriptions, advTradesSnapshot, advTradesUpdate, advTicker, advHeartbeat} {
		var err error
		if evs, err = dec.Decode(evs, []byte(m), recv); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	trade := func(id, sym, p, q string, side market.Side, ts string) ingest.Draft {
		return ingest.Draft{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Coinbase, Symbol: market.Symbol(sym),
			ID: id, Price: d(p), Qty: d(q), Side: side, Time: at(ts), ReceivedAt: recv}}
	}
	want := []ingest.Draft{
		trade("1002", "BTC-USD", "95000.01", "0.00100000", market.Sell, "2026-01-01T00:00:00.9Z"),
		trade("1001", "BTC-USD", "95000.00", "0.5", market.Buy, "2026-01-01T00:00:00.5Z"),
		trade("1003", "ETH-USD", "3300.5", "2", market.Buy, "2026-01-01T00:00:01.999999Z"),
		{Kind: ingest.KindQuote, Quote: market.Quote{Exchange: market.Coinbase, Symbol: "BTC-USD", Bid: d("95000.00"),
			BidQty: d("0.25"), Ask: d("95000.02"), AskQty: d("1.5"), Time: at("2026-01-01T00:00:03.5Z"), ReceivedAt: recv}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	recv := at("2026-01-01T00:00:05Z")
	tests := []struct {
		dec    wsfeed.Decoder
		msg    string
		reason string
	}{
		{NewExchangeDecoder(), `{"type":"match","trade_id":1,"side":"up","size":"1","price":"1","product_id":"BTC-USD","time":"2026-01-01T00:00:00Z"}`, wsfeed.ReasonField},
		{NewExchangeDecoder(), `{"type":"match","trade_id":1,"side":"buy","size":"1","price":"x","product_id":"BTC-USD","time":"2026-01-01T00:00:00Z"}`, wsfeed.ReasonNumber},
		{NewExchangeDecoder(), `{"type":"match","trade_id":1,"side":"buy","size":"1","price":"1","product_id":"BTCUSD","time":"2026-01-01T00:00:00Z"}`, wsfeed.ReasonSymbol},
		{NewExchangeDecoder(), `{"type":"match","trade_id":1,"side":"buy","size":"1","price":"1","product_id":"BTC-USD","time":"yesterday"}`, wsfeed.ReasonTime},
		{NewExchangeDecoder(), `{"type":"error","message":"Failed to subscribe"}`, wsfeed.ReasonType},
		{NewExchangeDecoder(), `{"type":"weird"}`, wsfeed.ReasonType},
		{NewExchangeDecoder(), `{"type":"match",`, wsfeed.ReasonJSON},
		{NewAdvancedDecoder(), `{"channel":"market_trades","events":[{"type":"update","trades":[{"trade_id":"1","product_id":"BTC-USD","price":"1","size":"1","side":"buy","time":"2026-01-01T00:00:00Z"}]}]}`, wsfeed.ReasonField},
		{NewAdvancedDecoder(), `{"channel":"market_trades","events":[{"type":"update","trades":[{"trade_id":"1",}]}]}`, wsfeed.ReasonJSON},
		{NewAdvancedDecoder(), `{"channel":"nope","events":[]}`, wsfeed.ReasonType},
		{NewAdvancedDecoder(), `{"type":"error","message":"bad"}`, wsfeed.ReasonType},
	}
	for _, tt := range tests {
		evs, err := tt.dec.Decode(nil, []byte(tt.msg), recv)
		if err == nil || wsfeed.Reason(err) != tt.reason || len(evs) != 0 {
			t.Errorf("%s: events %d, err %v; want reason %q", tt.msg, len(evs), err, tt.reason)
		}
	}
}
