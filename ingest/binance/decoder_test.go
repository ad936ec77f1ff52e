package binance

import (
	"errors"
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

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// decodeCapture runs every recv message of a shared capture through a decoder and
// returns the events and the number of messages that failed.
func decodeCapture(t *testing.T, ex market.Exchange, file string) ([]ingest.Draft, int) {
	t.Helper()
	dec := NewDecoder(ex, nil)
	var evs []ingest.Draft
	failed := 0
	for _, rec := range capturetest.Recv(t, file) {
		var err error
		evs, err = dec.Decode(evs, rec.Data, rec.Time)
		if err != nil {
			t.Errorf("%s: %v", rec.Data, err)
			failed++
		}
	}
	return evs, failed
}

func count(evs []ingest.Draft) map[ingest.EventKind]int {
	m := map[ingest.EventKind]int{}
	for _, ev := range evs {
		m[ev.Kind]++
	}
	return m
}

func TestDecodeSpotCapture(t *testing.T) {
	evs, failed := decodeCapture(t, market.Binance, "binance-spot-2021.jsonl")
	if failed != 0 {
		t.Fatalf("%d messages failed", failed)
	}
	// depthUpdate 177 (ignored), bookTicker 84, aggTrade 2, kline 2.
	want := map[ingest.EventKind]int{ingest.KindQuote: 84, ingest.KindTrade: 2, ingest.KindCandle: 2}
	if diff := cmp.Diff(want, count(evs)); diff != "" {
		t.Errorf("event counts (-want +got):\n%s", diff)
	}
	var trades []market.Trade
	var quote *market.Quote
	var candle *market.Candle
	for i := range evs {
		switch evs[i].Kind {
		case ingest.KindTrade:
			trades = append(trades, evs[i].Trade)
		case ingest.KindQuote:
			if quote == nil {
				quote = &evs[i].Quote
			}
		case ingest.KindCandle:
			if candle == nil {
				candle = &evs[i].Candle
			}
		}
	}
	// {"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000",
	//  "q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}
	wantTrade := market.Trade{Exchange: market.Binance, Symbol: "NKN-USDT", ID: "15683430",
		Price: d("0.35280000"), Qty: d("58.00000000"), Side: market.Buy, Time: ms(1633998523963),
		ReceivedAt: time.Unix(1633998523, 957215000).UTC()}
	if diff := cmp.Diff(wantTrade, trades[0]); diff != "" {
		t.Errorf("first trade (-want +got):\n%s", diff)
	}
	if trades[1].Symbol != "LRC-BTC" || !trades[1].Price.Equal(d("0.00000638")) || trades[1].ID != "9213679" {
		t.Errorf("second trade = %+v", trades[1])
	}
	// {"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}
	recv := time.Unix(1633998513, 377805000).UTC()
	wantQuote := market.Quote{Exchange: market.Binance, Symbol: "NKN-USDT", Bid: d("0.35210000"),
		BidQty: d("672.00000000"), Ask: d("0.35260000"), AskQty: d("3199.00000000"), Time: recv, ReceivedAt: recv}
	if diff := cmp.Diff(wantQuote, *quote); diff != "" {
		t.Errorf("first quote (-want +got):\n%s", diff)
	}
	// "k":{"t":1633998480000,...,"i":"1m",...,"o":"0.35270000","c":"0.35280000","h":"0.35280000",
	//  "l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000",...}
	wantCandle := market.Candle{Exchange: market.Binance, Symbol: "NKN-USDT", Interval: market.Interval1m,
		OpenTime: ms(1633998480000), Open: d("0.35270000"), High: d("0.35280000"), Low: d("0.35220000"),
		Close: d("0.35280000"), Volume: d("25877.00000000"), QuoteVolume: d("9116.04600000"), Trades: 30}
	if diff := cmp.Diff(wantCandle, *candle); diff != "" {
		t.Errorf("first candle (-want +got):\n%s", diff)
	}
}

func TestDecodeUSCapture(t *testing.T) {
	evs, failed := decodeCapture(t, market.BinanceUS, "binance-us-2021.jsonl")
	if failed != 0 {
		t.Fatalf("%d messages failed", failed)
	}
	// depthUpdate 336 (ignored), bookTicker 128, aggTrade 11, kline 5.
	want := map[ingest.EventKind]int{ingest.KindQuote: 128, ingest.KindTrade: 11, ingest.KindCandle: 5}
	if diff := cmp.Diff(want, count(evs)); diff != "" {
		t.Errorf("event counts (-want +got):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.Kind == ingest.KindTrade && ev.Trade.ID == "425086" {
			// "s":"OMGBUSD","a":425086,"p":"13.80760000","q":"105.82000000","T":1633998288467,"m":false
			if ev.Trade.Exchange != market.BinanceUS || ev.Trade.Symbol != "OMG-BUSD" ||
				!ev.Trade.Price.Equal(d("13.8076")) || !ev.Trade.Qty.Equal(d("105.82")) ||
				ev.Trade.Side != market.Buy || !ev.Trade.Time.Equal(ms(1633998288467)) {
				t.Errorf("trade 425086 = %+v", ev.Trade)
			}
			return
		}
	}
	t.Error("trade 425086 not decoded")
}

func TestDecodeMessages(t *testing.T) {
	recv := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec := NewDecoder(market.Binance, map[string]market.Symbol{"WEIRDX": "WEI-RDX"})
	tests := []struct {
		name   string
		msg    string
		want   []ingest.Draft
		reason string // decode error reason, "" for none
	}{
		{"trade, buyer is maker so the taker sold",
			`{"stream":"btcusdt@trade","data":{"e":"trade","E":1767225600123,"s":"BTCUSDT","t":4242,"p":"95000.01000000","q":"0.00100000","b":88,"a":50,"T":1767225600120,"m":true,"M":true}}`,
			[]ingest.Draft{{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: "4242",
				Price: d("95000.01000000"), Qty: d("0.00100000"), Side: market.Sell, Time: ms(1767225600120), ReceivedAt: recv}}}, ""},
		{"bare payload from a /ws endpoint",
			`{"e":"aggTrade","E":1,"s":"ETHBTC","a":7,"p":"0.05","q":"1","f":1,"l":1,"T":1767225600000,"m":false,"M":true}`,
			[]ingest.Draft{{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Binance, Symbol: "ETH-BTC", ID: "7",
				Price: d("0.05"), Qty: d("1"), Side: market.Buy, Time: ms(1767225600000), ReceivedAt: recv}}}, ""},
		{"symbol from the exchange's list",
			`{"stream":"x","data":{"e":"trade","s":"WEIRDX","t":1,"p":"1","q":"1","T":1,"m":false}}`,
			[]ingest.Draft{{Kind: ingest.KindTrade, Trade: market.Trade{Exchange: market.Binance, Symbol: "WEI-RDX", ID: "1",
				Price: d("1"), Qty: d("1"), Side: market.Buy, Time: ms(1), ReceivedAt: recv}}}, ""},
		{"subscription reply", `{"result":null,"id":1}`, nil, ""},
		{"unknown symbol", `{"stream":"x","data":{"e":"trade","s":"FOOBAR","t":1,"p":"1","q":"1","T":1,"m":false}}`, nil, wsfeed.ReasonSymbol},
		{"bad price", `{"stream":"x","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1x","q":"1","T":1,"m":false}}`, nil, wsfeed.ReasonNumber},
		{"float price is not a string", `{"stream":"x","data":{"e":"trade","s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":false}}`, nil, wsfeed.ReasonJSON},
		{"unknown event", `{"stream":"x","data":{"e":"24hrTicker","s":"BTCUSDT"}}`, nil, wsfeed.ReasonType},
		{"unsupported interval", `{"stream":"x","data":{"e":"kline","s":"BTCUSDT","k":{"t":0,"i":"1w","o":"1","c":"1","h":"1","l":"1","v":"1","q":"1","n":1,"x":true}}}`, nil, wsfeed.ReasonInterval},
		{"truncated", `{"stream":"x","data":{"e":"trade"`, nil, wsfeed.ReasonJSON},
		{"not an object", `[1,2]`, nil, wsfeed.ReasonJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.Decode(nil, []byte(tt.msg), recv)
			if tt.reason != "" {
				if err == nil || wsfeed.Reason(err) != tt.reason {
					t.Fatalf("err = %v, want reason %q", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	_, err := dec.Decode(nil, []byte(`{"stream":"x","data":{"e":"serverShutdown","E":1}}`), recv)
	if !errors.Is(err, wsfeed.ErrReconnect) {
		t.Errorf("serverShutdown: err = %v, want ErrReconnect", err)
	}
}

func TestSplitSymbol(t *testing.T) {
	for in, want := range map[string]market.Symbol{
		"BTCUSDT": "BTC-USDT", "ETHBTC": "ETH-BTC", "OMGBUSD": "OMG-BUSD", "RUNEEUR": "RUNE-EUR",
		"BTCUSD": "BTC-USD", "USDTTRY": "USDT-TRY", "BTCFDUSD": "BTC-FDUSD", "btcusdc": "BTC-USDC",
	} {
		if got, err := SplitSymbol(in); err != nil || got != want {
			t.Errorf("SplitSymbol(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "USDT", "FOOBAR"} {
		if _, err := SplitSymbol(bad); err == nil {
			t.Errorf("SplitSymbol(%q) accepted", bad)
		}
	}
}
