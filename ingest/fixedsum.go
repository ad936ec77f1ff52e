package ingest

import (
	"math"
	"math/bits"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// fixedSum is a running sum of decimals kept as an int64 mantissa m at scale digits
// after the point, for as long as every term and the sum fit: adding a trade's quantity
// or notional to a forming candle then costs no allocation, where decimal.Decimal.Add
// allocates two or three times. fold adds the sum to the candle's exact decimal when
// the candle is read; the result is exactly the decimal sum.
type fixedSum struct {
	m     int64
	scale int
}

// add adds m × 10^-scale and reports true, or reports false and leaves the sum as it was
// when the result would not fit (the caller then folds and adds exactly).
func (s *fixedSum) add(m int64, scale int) bool {
	if scale < 0 || scale > market.MaxFixedScale {
		return false
	}
	cur, curScale := s.m, s.scale
	if cur == 0 {
		curScale = scale
	}
	var ok bool
	switch {
	case scale > curScale:
		if cur, ok = market.ScaleUp(cur, scale-curScale); !ok {
			return false
		}
		curScale = scale
	case scale < curScale:
		if m, ok = market.ScaleUp(m, curScale-scale); !ok {
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
	r := d.Add(decimal.New(s.m, -int32(s.scale)))
	*s = fixedSum{}
	return r
}

// mulFixed returns the exact product of two fixed values, false when it does not fit.
func mulFixed(a int64, as int, b int64, bs int) (int64, int, bool) {
	scale := as + bs
	if scale > market.MaxFixedScale {
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
