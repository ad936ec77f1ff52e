package ingest

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// Summing through fixedSum (folding whenever a term does not fit, as the aggregator
// does) must give exactly the decimal sum, whatever the terms' scales and sizes.
func TestFixedSumEqualsDecimalSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	terms := func() []decimal.Decimal {
		var ts []decimal.Decimal
		for range 200 {
			var m int64
			switch rng.IntN(4) {
			case 0: // near the int64 limits
				m = math.MaxInt64 - rng.Int64N(1000)
			case 1:
				m = rng.Int64N(1e12)
			default:
				m = rng.Int64N(1e6)
			}
			if rng.IntN(5) == 0 {
				m = -m
			}
			exp := -int32(rng.IntN(22))
			if rng.IntN(20) == 0 {
				exp = int32(rng.IntN(3)) // a positive exponent: no fixed form
			}
			ts = append(ts, decimal.New(m, exp))
		}
		return ts
	}
	for round := range 200 {
		var s fixedSum
		got, want := decimal.Zero, decimal.Zero
		for _, d := range terms() {
			want = want.Add(d)
			m, sc, ok := market.FixedOf(d)
			if !ok || !s.add(m, sc) {
				got = s.fold(got).Add(d)
			}
		}
		if got = s.fold(got); !got.Equal(want) {
			t.Fatalf("round %d: fixedSum gave %s, decimal sum %s", round, got, want)
		}
	}
}

func TestMulFixedEqualsDecimalProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 100000 {
		a, b := decimal.New(rng.Int64()>>rng.IntN(64), -int32(rng.IntN(12))), decimal.New(rng.Int64()>>rng.IntN(64), -int32(rng.IntN(12)))
		if rng.IntN(2) == 0 {
			a = a.Neg()
		}
		am, as, aok := market.FixedOf(a)
		bm, bs, bok := market.FixedOf(b)
		m, s, ok := mulFixed(am, as, bm, bs)
		if !aok || !bok || !ok {
			continue
		}
		if got, want := decimal.New(m, -int32(s)), a.Mul(b); !got.Equal(want) {
			t.Fatalf("%s × %s: mulFixed %s, decimal %s", a, b, got, want)
		}
	}
}

// The aggregator's per-trade sums allocate nothing while the candles stay open.
func TestAggregatorAddDoesNotAllocate(t *testing.T) {
	a := NewAggregator(AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}})
	trade := tr("BTC-USD", time.Second, "65083.66", "0.00123456")
	dst := make([]market.Candle, 0, 16)
	dst, _ = a.Add(&trade, dst[:0])
	if n := testing.AllocsPerRun(1000, func() { dst, _ = a.Add(&trade, dst[:0]) }); n != 0 {
		t.Errorf("Aggregator.Add allocates %v times per trade, want 0", n)
	}
	c := a.Flush(nil)[0]
	if want := dec("0.00123456").Mul(dec("1002")); !c.Volume.Equal(want) || c.Trades != 1002 {
		t.Errorf("1m candle volume %s over %d trades, want %s over 1002", c.Volume, c.Trades, want)
	}
	if want := dec("65083.66").Mul(dec("0.00123456")).Mul(dec("1002")); !c.QuoteVolume.Equal(want) {
		t.Errorf("1m candle quote volume %s, want %s", c.QuoteVolume, want)
	}
}
