package market

import "github.com/shopspring/decimal"

// AppendDecimal appends d's text as decimal.Decimal.String writes it (plain form, no
// trailing zeros after the point) without allocating when its coefficient has at most
// 18 digits, which every price and quantity of the supported venues has. Hot write paths
// use it; anything else falls back to String.
func AppendDecimal(dst []byte, d decimal.Decimal) []byte {
	exp := d.Exponent()
	if exp > 0 || exp < -18 || d.NumDigits() > 18 {
		return append(dst, d.String()...)
	}
	return AppendFixed(dst, d.CoefficientInt64(), int(-exp))
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
