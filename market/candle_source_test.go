package market

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The src field is optional: records without it read as before, live candles write no
// src, and a REST candle's source survives a round trip.
func TestCandleSourceJSON(t *testing.T) {
	c := Candle{Exchange: Binance, Symbol: "BTC-USDT", Interval: Interval1m, OpenTime: time.Unix(60, 0).UTC(),
		Open: decimal.NewFromInt(2), High: decimal.NewFromInt(3), Low: decimal.NewFromInt(1), Close: decimal.NewFromInt(2),
		Volume: decimal.NewFromInt(4), QuoteVolume: decimal.NewFromInt(8), Trades: 2, Closed: true}
	live, _ := json.Marshal(c)
	if strings.Contains(string(live), "src") {
		t.Fatalf("live candle record has src: %s", live)
	}
	if !strings.HasSuffix(string(live), `"closed":true}`) {
		t.Fatalf("record %s: the candle script finds closed candles by this text", live)
	}
	c.Source = "rest"
	rest, _ := json.Marshal(c)
	var back Candle
	if err := json.Unmarshal(rest, &back); err != nil || back.Source != "rest" {
		t.Fatalf("round trip of %s: %+v %v", rest, back, err)
	}
	if err := json.Unmarshal(live, &back); err != nil || back.Source != "" {
		t.Fatalf("old record: %+v %v", back, err)
	}
	// A venue without quote volume: VWAP falls back to the close, never zero.
	c.QuoteVolume = decimal.Decimal{}
	if !c.VWAP().Equal(c.Close) {
		t.Fatalf("vwap without quote volume %s, want close %s", c.VWAP(), c.Close)
	}
}
