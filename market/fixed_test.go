package market_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// AppendDecimal must write exactly what String writes: the stored trade format depends
// on it.
func TestAppendDecimalEqualsString(t *testing.T) {
	cases := []decimal.Decimal{
		decimal.Zero, decimal.New(0, -8), decimal.New(0, 3), decimal.New(5, 0), decimal.New(-5, 0),
		decimal.New(5, 2), decimal.New(120, -1), decimal.New(1200, -3), decimal.New(1, -18),
		decimal.New(-1, -18), decimal.New(math.MaxInt64, -18), decimal.New(math.MinInt64, -18),
		decimal.New(math.MaxInt64, 0), decimal.New(math.MinInt64, -4), decimal.New(7, -19),
		decimal.New(1, -40), decimal.RequireFromString("65083.66000000"),
		decimal.RequireFromString("0.00001000"), decimal.RequireFromString("13355.87450757"),
		decimal.RequireFromString("123456789012345678901234567890.5"),
		decimal.RequireFromString("-0.000000000000000000000001"),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		m := rng.Int64() >> rng.IntN(64)
		if rng.IntN(2) == 0 {
			m = -m
		}
		cases = append(cases, decimal.New(m, -int32(rng.IntN(22))+2))
	}
	for _, d := range cases {
		if got, want := string(market.AppendDecimal([]byte("x"), d)), "x"+d.String(); got != want {
			t.Errorf("AppendDecimal(%s × 10^%d) = %q, want %q", d.Coefficient(), d.Exponent(), got, want)
		}
	}
}

func TestAppendDecimalDoesNotAllocate(t *testing.T) {
	d := decimal.RequireFromString("65083.66000000")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = market.AppendDecimal(buf[:0], d) }); n != 0 {
		t.Errorf("AppendDecimal allocates %v times, want 0", n)
	}
}

func TestNumericID(t *testing.T) {
	for id, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": math.MaxUint64} {
		if got, ok := market.NumericID(id); !ok || got != want {
			t.Errorf("NumericID(%q) = %d, %v; want %d, true", id, got, ok, want)
		}
	}
	for _, id := range []string{"", "-1", "+1", "1_000", "12a", " 1", "18446744073709551616", "123456789012345678901"} {
		if got, ok := market.NumericID(id); ok {
			t.Errorf("NumericID(%q) = %d, true; want false", id, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { market.NumericID("TRADE-1") }); n != 0 {
		t.Errorf("NumericID of a non-numeric id allocates %v times, want 0", n)
	}
}
