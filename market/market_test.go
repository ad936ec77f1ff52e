package market

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestParseInterval(t *testing.T) {
	for _, iv := range Intervals {
		got, err := ParseInterval(iv.String())
		if err != nil || got != iv {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", iv.String(), got, err, iv)
		}
	}
	for _, bad := range []string{"", "2m", "1M", "60s", "1w"} {
		if _, err := ParseInterval(bad); err == nil || !strings.Contains(err.Error(), "1s 1m 3m") {
			t.Errorf("ParseInterval(%q) error = %v; want one listing the valid names", bad, err)
		}
	}
	got, err := ParseIntervals("1h,1m, 5m")
	if err != nil || !cmp.Equal(got, []Interval{Interval1m, Interval5m, Interval1h}) {
		t.Errorf("ParseIntervals = %v, %v", got, err)
	}
	if _, err := ParseIntervals("1m,1m"); err == nil {
		t.Error("ParseIntervals accepted a repeat")
	}
}

func TestIntervalAlign(t *testing.T) {
	tests := []struct {
		iv   Interval
		in   string
		want string
	}{
		{Interval1m, "2026-01-01T00:00:59.999999999Z", "2026-01-01T00:00:00Z"},
		{Interval1m, "2026-01-01T00:01:00Z", "2026-01-01T00:01:00Z"},
		{Interval4h, "2026-01-01T07:59:59Z", "2026-01-01T04:00:00Z"},
		{Interval1d, "2026-03-05T23:59:59Z", "2026-03-05T00:00:00Z"},
		{Interval3m, "2026-01-01T00:05:00Z", "2026-01-01T00:03:00Z"},
		{Interval1s, "1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59Z"},
		// Time zones do not move buckets: alignment is to the UTC epoch.
		{Interval1h, "2026-01-01T05:30:00+05:30", "2026-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		in, _ := time.Parse(time.RFC3339Nano, tt.in)
		got := FormatTime(tt.iv.Align(in))
		if got != tt.want {
			t.Errorf("%s.Align(%s) = %s, want %s", tt.iv, tt.in, got, tt.want)
		}
	}
}

func TestSymbol(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"BTC-USDT", "BTC-USDT", true},
		{"btc-usd", "BTC-USD", true},
		{"xbt/usd", "XBT-USD", true},
		{"", "", false},
		{"BTCUSDT", "", false},
		{"BTC-", "", false},
		{"BTC-USD-X", "", false},
		{"BT C-USD", "", false},
	}
	for _, tt := range tests {
		got, err := ParseSymbol(tt.in)
		if (err == nil) != tt.ok || string(got) != tt.want {
			t.Errorf("ParseSymbol(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := NewSymbol("eth", "btc"); s != "ETH-BTC" || s.Base() != "ETH" || s.Quote() != "BTC" {
		t.Errorf("NewSymbol = %q base %q quote %q", s, s.Base(), s.Quote())
	}
	if !errors.Is(Symbol("").Validate(), ErrEmptySymbol) {
		t.Error("empty symbol: want ErrEmptySymbol")
	}
}

func TestExchangeValidate(t *testing.T) {
	for _, ok := range []Exchange{Binance, Coinbase, "my-venue_2"} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []Exchange{"", "Binance", "a:b", "a{b}", Exchange(strings.Repeat("a", 33))} {
		if bad.Validate() == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestTradeValidate(t *testing.T) {
	ok := Trade{Exchange: Coinbase, Symbol: "BTC-USD", ID: "1", Price: d("1"), Qty: d("0.1"), Side: Buy, Time: time.Unix(1, 0)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*Trade)
		want error
	}{
		{"zero price", func(t *Trade) { t.Price = decimal.Zero }, ErrNonPositivePrice},
		{"negative price", func(t *Trade) { t.Price = d("-1") }, ErrNonPositivePrice},
		{"zero qty", func(t *Trade) { t.Qty = decimal.Zero }, ErrNonPositiveQty},
		{"empty symbol", func(t *Trade) { t.Symbol = "" }, ErrEmptySymbol},
		{"empty exchange", func(t *Trade) { t.Exchange = "" }, ErrEmptyExchange},
		{"no time", func(t *Trade) { t.Time = time.Time{} }, ErrZeroTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := ok
			tt.mod(&tr)
			if err := tr.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTradeJSONRoundTrip(t *testing.T) {
	line := `{"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"1","price":"95000.01","qty":"0.01","side":"buy","time":"2026-01-01T00:00:01.123456Z"}`
	var tr Trade
	if err := json.Unmarshal([]byte(line), &tr); err != nil {
		t.Fatal(err)
	}
	want := Trade{Exchange: Coinbase, Symbol: "BTC-USD", ID: "1", Price: d("95000.01"), Qty: d("0.01"), Side: Buy,
		Time: time.Date(2026, 1, 1, 0, 0, 1, 123456000, time.UTC)}
	if diff := cmp.Diff(want, tr); diff != "" {
		t.Errorf("decoded trade (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != line {
		t.Errorf("re-encoded:\n got %s\nwant %s", out, line)
	}
	// Trailing zeros are not part of the record.
	tr.Price = d("95000.0100")
	out, _ = json.Marshal(tr)
	if !strings.Contains(string(out), `"price":"95000.01"`) {
		t.Errorf("price with trailing zeros encoded as %s", out)
	}
}

func TestTradeJSONErrors(t *testing.T) {
	for _, line := range []string{
		`{"type":"quote","exchange":"coinbase","symbol":"BTC-USD","price":"1","qty":"1","time":"2026-01-01T00:00:00Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","price":"abc","qty":"1","time":"2026-01-01T00:00:00Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","price":"-1","qty":"1","time":"2026-01-01T00:00:00Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","price":"1","qty":"1","time":"yesterday"}`,
		`{"exchange":"coinbase","symbol":"","price":"1","qty":"1","time":"2026-01-01T00:00:00Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","price":"1","qty":"1","side":"up","time":"2026-01-01T00:00:00Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","price":"1","qty":"1"}`,
		`not json`,
	} {
		var tr Trade
		if err := json.Unmarshal([]byte(line), &tr); err == nil {
			t.Errorf("accepted %s", line)
		}
	}
}

func TestCandleAddAndJSON(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	trades := []Trade{
		{Exchange: Binance, Symbol: "BTC-USDT", Price: d("100.5"), Qty: d("2"), Time: at("2026-01-01T00:00:01Z")},
		{Exchange: Binance, Symbol: "BTC-USDT", Price: d("101"), Qty: d("1"), Time: at("2026-01-01T00:00:30Z")},
		{Exchange: Binance, Symbol: "BTC-USDT", Price: d("99.25"), Qty: d("0.5"), Time: at("2026-01-01T00:00:59.999Z")},
	}
	c := NewCandle(&trades[0], Interval1m)
	for i := 1; i < len(trades); i++ {
		c.Add(&trades[i])
	}
	c.Closed = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	// quote volume = 201 + 101 + 49.625 = 351.625; volume = 3.5; vwap = 100.4642857142857142857…
	want := `{"type":"candle","exchange":"binance","symbol":"BTC-USDT","interval":"1m","open_time":"2026-01-01T00:00:00Z","close_time":"2026-01-01T00:01:00Z","open":"100.5","high":"101","low":"99.25","close":"99.25","volume":"3.5","quote_volume":"351.625","trades":3,"vwap":"100.464285714285714286","closed":true}`
	if string(out) != want {
		t.Errorf("candle JSON\n got %s\nwant %s", out, want)
	}
	var back Candle
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	flat := FlatCandle(&c, c.CloseTime())
	if !flat.VWAP().Equal(c.Close) || flat.Trades != 0 || !flat.Volume.IsZero() {
		t.Errorf("flat candle = %+v", flat)
	}
}

func TestCandleValidate(t *testing.T) {
	base := Candle{Exchange: Binance, Symbol: "BTC-USDT", Interval: Interval1m, OpenTime: time.Unix(60, 0),
		Open: d("2"), High: d("3"), Low: d("1"), Close: d("2"), Volume: d("1"), QuoteVolume: d("2"), Trades: 1}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Candle){
		"unaligned":     func(c *Candle) { c.OpenTime = time.Unix(61, 0) },
		"high below":    func(c *Candle) { c.High = d("1.5") },
		"zero low":      func(c *Candle) { c.Low = decimal.Zero },
		"bad interval":  func(c *Candle) { c.Interval = Interval(7 * time.Second) },
		"negative vol":  func(c *Candle) { c.Volume = d("-1") },
		"close too low": func(c *Candle) { c.Close = d("0.5") },
	} {
		c := base
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
