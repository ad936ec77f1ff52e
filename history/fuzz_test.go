package history_test

import (
	"testing"

	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/market"
)

// The decoders take untrusted bytes from the network: they must never panic, and what
// they accept must be candles of the asked market and interval, and valid trades.

func checkCandles(t *testing.T, cs []market.Candle, err error, ex market.Exchange, iv market.Interval) {
	t.Helper()
	if err != nil {
		return
	}
	for i, c := range cs {
		if c.Exchange != ex || c.Symbol != btcusd || c.Interval != iv || c.Source != history.SourceREST {
			t.Fatalf("candle %d: %+v", i, c)
		}
		if i > 0 && c.OpenTime.Before(cs[i-1].OpenTime) {
			t.Fatalf("candles out of order at %d", i)
		}
	}
}

func checkTrades(t *testing.T, ts []market.Trade, err error) {
	t.Helper()
	if err != nil {
		return
	}
	for i := range ts {
		if err := ts[i].Validate(); err != nil {
			t.Fatalf("trade %d accepted but invalid: %v", i, err)
		}
	}
}

func FuzzDecodeBinanceKlines(f *testing.F) {
	f.Add([]byte(`[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]`))
	f.Add([]byte(`[[1,"1e3","2","0.5","1","0",2,"0",0]]`))
	f.Add([]byte(`{"code":-1121,"msg":"Invalid symbol."}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := history.DecodeBinanceKlines(b, market.Binance, btcusd, market.Interval1m)
		if err == nil {
			for _, c := range cs {
				if c.Exchange != market.Binance || c.Interval != market.Interval1m {
					t.Fatalf("candle %+v", c)
				}
			}
		}
	})
}

func FuzzDecodeCoinbaseExchangeCandles(f *testing.F) {
	f.Add([]byte(`[[1415398768,0.32,4.2,0.35,4.2,12.3],[1415398708,0.3,0.4,0.31,0.33,1e-8]]`))
	f.Add([]byte(`{"message":"NotFound"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := history.DecodeCoinbaseExchangeCandles(b, btcusd, market.Interval5m)
		checkCandles(t, cs, err, market.Coinbase, market.Interval5m)
	})
}

func FuzzDecodeCoinbaseAdvancedCandles(f *testing.F) {
	f.Add([]byte(`{"candles":[{"start":"1639508050","low":"140.21","high":"140.21","open":"140.21","close":"140.21","volume":"56437345"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := history.DecodeCoinbaseAdvancedCandles(b, btcusd, market.Interval1m)
		checkCandles(t, cs, err, market.Coinbase, market.Interval1m)
	})
}

func FuzzDecodeKrakenOHLC(f *testing.F) {
	f.Add([]byte(`{"error":[],"result":{"XXBTZUSD":[[1688671200,"30306.1","30306.2","30305.7","30305.7","30306.1","3.39243896",23]],"last":1688672160}}`))
	f.Add([]byte(`{"error":["EGeneral:Invalid arguments"]}`))
	f.Add([]byte(`{"error":["EAPI:Rate limit exceeded"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := history.DecodeKrakenOHLC(b, btcusd, market.Interval1m)
		checkCandles(t, cs, err, market.Kraken, market.Interval1m)
	})
}

func FuzzDecodeTrades(f *testing.F) {
	f.Add([]byte(`[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,"m":true,"M":true}]`))
	f.Add([]byte(`[{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}]`))
	f.Add([]byte(`[{"time":"2014-11-07T22:19:28.578544Z","trade_id":74,"price":"10.00000000","size":"0.01000000","side":"buy"}]`))
	f.Add([]byte(`{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m","",61044952]],"last":"1688671969993150842"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := history.DecodeBinanceAggTrades(b, market.Binance, btcusd)
		checkTrades(t, ts, err)
		ts, err = history.DecodeBinanceTrades(b, market.Binance, btcusd)
		checkTrades(t, ts, err)
		ts, err = history.DecodeCoinbaseExchangeTrades(b, btcusd)
		checkTrades(t, ts, err)
		ts, _, err = history.DecodeKrakenTrades(b, btcusd)
		checkTrades(t, ts, err)
	})
}

// Numbers are taken from the raw token: a price that float64 would round survives.
func TestDecodersKeepExactDigits(t *testing.T) {
	cs, err := history.DecodeCoinbaseExchangeCandles([]byte(`[[1415398768,0.1000000000000000055511151231257827,4.20000000000000001,0.3,4.2,123456789.123456789123]]`), btcusd, market.Interval1m)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs[0].Low.String(); got != "0.1000000000000000055511151231257827" {
		t.Fatalf("low %s", got)
	}
	if got := cs[0].Volume.String(); got != "123456789.123456789123" {
		t.Fatalf("volume %s", got)
	}
	ts, _, err := history.DecodeKrakenTrades([]byte(`{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"s","m","",61044952]],"last":"1"}}`), btcusd)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Time.UnixNano() != 1688669597827736900 || ts[0].Side != market.Sell || ts[0].ID != "61044952" {
		t.Fatalf("kraken trade %+v", ts[0])
	}
	for _, bad := range []string{`[[1,null,1,1,1,1]]`, `[[1,"x",1,1,1,1]]`, `[[1,true,1,1,1,1]]`, `[[1,1,1,1,1]]`} {
		if _, err := history.DecodeCoinbaseExchangeCandles([]byte(bad), btcusd, market.Interval1m); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
