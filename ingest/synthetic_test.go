package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

func collect(t *testing.T, cfg SyntheticConfig) []market.Trade {
	t.Helper()
	src, err := NewSynthetic(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Event, 1<<16)
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var trades []market.Trade
	for ev := range out {
		trades = append(trades, *ev.Trade())
	}
	return trades
}

func TestSyntheticDeterministicAndValid(t *testing.T) {
	cfg := SyntheticConfig{Seed: 42, Symbols: 7, Rate: 1000, MaxSpeed: true, Start: t0, Limit: 5000}
	a, b := collect(t, cfg), collect(t, cfg)
	if len(a) != 5000 {
		t.Fatalf("got %d trades, want the limit 5000", len(a))
	}
	if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y decimal.Decimal) bool { return x.Equal(y) })); diff != "" {
		t.Fatalf("same seed, different trades:\n%.2000s", diff)
	}
	cfg.Seed = 43
	if c := collect(t, cfg); c[10].Price.Equal(a[10].Price) && c[11].Price.Equal(a[11].Price) && c[12].Symbol == a[12].Symbol {
		t.Error("another seed gave the same trades")
	}
	perSymbol := map[market.Symbol]int{}
	last := t0
	for i := range a {
		tr := &a[i]
		if err := tr.Validate(); err != nil {
			t.Fatalf("trade %d invalid: %v", i, err)
		}
		if tr.Time.Before(last) {
			t.Fatalf("trade %d goes back in time", i)
		}
		last = tr.Time
		perSymbol[tr.Symbol]++
		spec := syntheticSpec(indexOf(t, tr.Symbol))
		if tr.Price.Exponent() < -spec.priceScale || tr.Qty.Exponent() < -spec.lotScale {
			t.Fatalf("trade %d off the tick/lot grid: %s x %s", i, tr.Price, tr.Qty)
		}
	}
	if len(perSymbol) != 7 {
		t.Errorf("trades spread over %d symbols, want 7", len(perSymbol))
	}
	// 5000 trades at 1000/s take about 5 s of market time.
	if span := last.Sub(t0); span < 4*time.Second || span > 6*time.Second {
		t.Errorf("5000 trades at 1000/s span %v, want about 5s", span)
	}
}

func indexOf(t *testing.T, sym market.Symbol) int {
	for i := 0; i < 100; i++ {
		if syntheticSpec(i).symbol == sym {
			return i
		}
	}
	t.Fatalf("unknown synthetic symbol %s", sym)
	return -1
}

func TestSyntheticPacesInRealTime(t *testing.T) {
	src, err := NewSynthetic(SyntheticConfig{Rate: 200, Limit: 40})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Event, 100)
	start := time.Now()
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	// 40 trades at 200/s: about 200ms; exponential gaps make it vary.
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Errorf("40 trades at 200/s took %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Run(ctx, make(chan Event)); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}

func TestSyntheticConfigErrors(t *testing.T) {
	for _, cfg := range []SyntheticConfig{{Rate: -1}, {Symbols: -2}, {Exchange: "Bad Name"}} {
		if _, err := NewSynthetic(cfg); err == nil {
			t.Errorf("NewSynthetic(%+v) accepted", cfg)
		}
	}
}
