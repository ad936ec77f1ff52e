package ingest

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"
)

// fixedSum is a running sum of decimals kept as an int64 mantissa m at scale digits
// after the point, for as long as every term and the sum fit: adding a trade's quantity
// or notional to a forming candle then costs no allocation, where decimal.Decimal.Add
// allocates two or three times. fold adds the sum to the candle's exact decimal when
// the candle is read; the result is exactly the decimal sum.
type fixedSum struct {
	m     int64
	scale int32
}

// maxScale is the most digits after the point a fixedSum keeps: 10^18 fits an int64.
const maxScale = 18

var pow10 = func() (p [maxScale + 1]int64) {
	p[0] = 1
	for i := 1; i <= maxScale; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// add adds m × 10^-scale and reports true, or reports false and leaves the sum as it was
// when the result would not fit (the caller then folds and adds exactly).
func (s *fixedSum) add(m int64, scale int32) bool {
	if scale < 0 || scale > maxScale {
		return false
	}
	cur, curScale := s.m, s.scale
	if cur == 0 {
		curScale = scale
	}
	switch {
	case scale > curScale:
		var ok bool
		if cur, ok = scaleUp(cur, scale-curScale); !ok {
			return false
		}
		curScale = scale
	case scale < curScale:
		var ok bool
		if m, ok = scaleUp(m, curScale-scale); !ok {
			return false
		}
	}
	sum := cur + m
	if (cur > 0 && m > 0 && sum < 0) || (cur < 0 && m < 0 && sum >= 0) {
		return false
	}
	s.m, s.scale = sum, curScale
	return true
}

// fold returns d plus the sum and resets the sum.
func (s *fixedSum) fold(d decimal.Decimal) decimal.Decimal {
	if s.m == 0 {
		return d
	}
	r := d.Add(decimal.New(s.m, -s.scale))
	*s = fixedSum{}
	return r
}

// scaleUp returns m × 10^k, false on overflow.
func scaleUp(m int64, k int32) (int64, bool) {
	if k > maxScale {
		return 0, false
	}
	p := pow10[k]
	if m > math.MaxInt64/p || m < -math.MaxInt64/p {
		return 0, false
	}
	return m * p, true
}

// fixedOf returns d as a mantissa and a scale (digits after the point, 0–18), false when
// it has no such form (more than 18 digits, or a positive exponent).
func fixedOf(d decimal.Decimal) (int64, int32, bool) {
	exp := d.Exponent()
	if exp > 0 || exp < -maxScale || d.NumDigits() > 18 {
		return 0, 0, false
	}
	return d.CoefficientInt64(), -exp, true
}

// mulFixed returns the exact product of two fixed values, false when it does not fit.
func mulFixed(a int64, as int32, b int64, bs int32) (int64, int32, bool) {
	scale := as + bs
	if scale > maxScale {
		return 0, 0, false
	}
	neg := (a < 0) != (b < 0)
	ua, ub := absU(a), absU(b)
	hi, lo := bits.Mul64(ua, ub)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, 0, false
	}
	p := int64(lo)
	if neg {
		p = -p
	}
	return p, scale, true
}

func absU(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}
