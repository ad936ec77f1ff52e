package market

import (
	"math"

	"github.com/shopspring/decimal"
)

// Fixed-point helpers for hot paths: a decimal as an int64 mantissa m and a scale (digits
// after the point), value m × 10^-scale, for the values every venue sends (at most 18
// digits, at most 18 decimal places).

// MaxFixedScale is the most digits after the point a fixed-point value has here: 10^18
// fits an int64.
const MaxFixedScale = 18

var pow10 = func() (p [MaxFixedScale + 1]int64) {
	p[0] = 1
	for i := 1; i <= MaxFixedScale; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// FixedOf returns d as a mantissa and a scale (0–18), without allocating; false when it
// has no such form (more than 18 digits, more than 18 places, or a positive exponent).
func FixedOf(d decimal.Decimal) (m int64, scale int, ok bool) {
	exp := d.Exponent()
	if exp > 0 || exp < -MaxFixedScale || d.NumDigits() > 18 {
		return 0, 0, false
	}
	return d.CoefficientInt64(), int(-exp), true
}

// ScaleUp returns m × 10^k (0 ≤ k ≤ 18), false when that overflows an int64.
func ScaleUp(m int64, k int) (int64, bool) {
	if k < 0 || k > MaxFixedScale {
		return 0, false
	}
	p := pow10[k]
	if m > math.MaxInt64/p || m < math.MinInt64/p {
		return 0, false
	}
	return m * p, true
}

// AppendDecimal appends d's text as decimal.Decimal.String writes it (plain form, no
// trailing zeros after the point) without allocating when it has a fixed-point form
// (FixedOf), which every price and quantity of the supported venues has. Hot write paths
// use it; anything else falls back to String.
func AppendDecimal(dst []byte, d decimal.Decimal) []byte {
	m, scale, ok := FixedOf(d)
	if !ok {
		return append(dst, d.String()...)
	}
	return AppendFixed(dst, m, scale)
}

// AppendFixed appends m × 10^-scale (scale ≥ 0) in plain form without trailing zeros
// after the point: "0", "12", "0.5", "-65083.66".
func AppendFixed(dst []byte, m int64, scale int) []byte {
	u := uint64(m)
	if m < 0 {
		dst = append(dst, '-')
		u = -u // two's complement: right for math.MinInt64 too
	}
	for scale > 0 && u%10 == 0 && u != 0 {
		u /= 10
		scale--
	}
	if u == 0 {
		return append(dst, '0')
	}
	var buf [48]byte
	i := len(buf)
	for n := 0; u > 0 || n <= scale; n++ {
		if n == scale && scale > 0 {
			i--
			buf[i] = '.'
		}
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	return append(dst, buf[i:]...)
}
