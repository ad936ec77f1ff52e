package wsfeed

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

func TestBackoffIsCappedAndJittered(t *testing.T) {
	f := New(Config{URL: "ws://x", BackoffMin: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond}, nil, nil)
	p := f.retryPolicy()
	for n := 0; n < 40; n++ {
		ceil := min(80*time.Millisecond, 10*time.Millisecond<<min(n, 20))
		seen := map[time.Duration]bool{}
		for i := 0; i < 50; i++ {
			d := p.Delay(n)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d values: no jitter", n, len(seen))
		}
	}
}

func TestTracker(t *testing.T) {
	var k Tracker
	tr := func(sym market.Symbol, id string) *market.Trade {
		return &market.Trade{Exchange: market.Binance, Symbol: sym, ID: id}
	}
	steps := []struct {
		sym  market.Symbol
		id   string
		want Verdict
	}{
		{"BTC-USDT", "10", Fresh}, {"BTC-USDT", "11", Fresh}, {"ETH-USDT", "3", Fresh},
		{"BTC-USDT", "11", Duplicate}, {"BTC-USDT", "9", Duplicate}, {"BTC-USDT", "15", Gapped},
		{"BTC-USDT", "16", Fresh}, {"BTC-USDT", "", Fresh}, {"BTC-USDT", "abc", Fresh},
	}
	for _, s := range steps {
		v, gap := k.Check(tr(s.sym, s.id))
		if v != s.want {
			t.Errorf("%s %s: verdict %d, want %d", s.sym, s.id, v, s.want)
		}
		if v == Gapped && (gap.FromID != "12" || gap.ToID != "14" || gap.Missing != 3) {
			t.Errorf("gap = %+v", gap)
		}
	}
}

func TestWireDecimal(t *testing.T) {
	for _, s := range []string{"0", "0.35280000", "-1.5", "95000.01", "0.00000638", "1.5e-05", "2E+3",
		"123456789012345678", "1234567890.123456789012345", "0.000000000000000000000001"} {
		got, err := wire.Decimal([]byte(s))
		want := decimal.RequireFromString(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("Decimal(%q) = %s, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-", "1x", "1.2.3", "e5", "1e", "1e+99999", "NaN"} {
		if _, err := wire.Decimal([]byte(s)); err == nil {
			t.Errorf("Decimal(%q) accepted", s)
		}
	}
}
