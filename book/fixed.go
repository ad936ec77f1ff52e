package book

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// maxScale is the finest precision a book holds: 18 decimal places.
const maxScale = market.MaxFixedScale

// ErrNumber is wrapped by errors about a price or quantity that is not a non-negative
// decimal, or that does not fit the book's fixed-point form (more than 18 significant
// digits, or more than 18 decimal places).
var ErrNumber = errors.New("book: bad number")

// fixed is a decimal read from the wire: mant × 10^-scale, scale the significant
// fraction digits (trailing zeros dropped), text the fraction digits as written.
type fixed struct {
	mant  int64
	scale int
	text  int
}

// parseFixed reads a non-negative decimal from its wire text: digits with an optional
// fraction, or (slowly) any form shopspring/decimal accepts, such as exponents.
func parseFixed(b []byte) (fixed, error) {
	var f fixed
	if len(b) == 0 {
		return f, fmt.Errorf("%w: empty", ErrNumber)
	}
	i := 0
	digits := 0 // significant digits accumulated in mant
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if f.mant == 0 && b[i] == '0' {
			continue
		}
		if digits == maxScale {
			return f, fmt.Errorf("%w: %.40q has more than %d significant digits", ErrNumber, b, maxScale)
		}
		f.mant = f.mant*10 + int64(b[i]-'0')
		digits++
	}
	if i == 0 {
		return slowFixed(b)
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		zeros := 0 // fraction zeros not yet folded into mant
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			f.text++
			if b[i] == '0' {
				zeros++
				continue
			}
			if f.mant == 0 {
				// leading fraction zeros of a number below one are not significant
				// digits, but they count in the scale.
				f.scale += zeros
				zeros = 0
			}
			if digits+zeros+1 > maxScale || f.scale+zeros+1 > maxScale {
				return f, fmt.Errorf("%w: %.40q is finer or longer than %d digits", ErrNumber, b, maxScale)
			}
			for ; zeros > 0; zeros-- {
				f.mant *= 10
				digits++
				f.scale++
			}
			f.mant = f.mant*10 + int64(b[i]-'0')
			digits++
			f.scale++
		}
		if i == start {
			return f, fmt.Errorf("%w: %.40q", ErrNumber, b)
		}
		if f.text > 64 {
			return f, fmt.Errorf("%w: %.40q has too many decimals", ErrNumber, b)
		}
	}
	if i != len(b) {
		return slowFixed(b)
	}
	return f, nil
}

// slowFixed handles exponents and other forms through shopspring/decimal.
func slowFixed(b []byte) (fixed, error) {
	if len(b) > 64 {
		return fixed{}, fmt.Errorf("%w: %.40q", ErrNumber, b)
	}
	d, err := decimal.NewFromString(string(b))
	if err != nil {
		return fixed{}, fmt.Errorf("%w: %.40q", ErrNumber, b)
	}
	return fromDecimal(d)
}

func fromDecimal(d decimal.Decimal) (fixed, error) {
	if d.Sign() < 0 {
		return fixed{}, fmt.Errorf("%w: %s is negative", ErrNumber, d)
	}
	if d.Sign() == 0 {
		return fixed{}, nil
	}
	exp := d.Exponent()
	if exp > maxScale || exp < -10*maxScale {
		return fixed{}, fmt.Errorf("%w: %s does not fit 18 digits", ErrNumber, d)
	}
	c := d.Coefficient()
	// Drop trailing zeros of the coefficient so the scale is the significant one.
	ten := decimal.New(10, 0).BigInt()
	for exp < 0 {
		q, r := new(big.Int).QuoRem(c, ten, new(big.Int))
		if r.Sign() != 0 {
			break
		}
		c, exp = q, exp+1
	}
	for exp > 0 {
		c.Mul(c, ten)
		exp--
	}
	if -exp > maxScale || !c.IsInt64() || c.Int64() > math.MaxInt64/10 {
		return fixed{}, fmt.Errorf("%w: %s does not fit 18 digits", ErrNumber, d)
	}
	return fixed{mant: c.Int64(), scale: int(-exp), text: int(-exp)}, nil
}

// rescale returns m (at scale from) at scale to ≥ from, and false on overflow.
func rescale(m int64, from, to int) (int64, bool) {
	return market.ScaleUp(m, to-from)
}

// appendFixed appends m × 10^-scale in plain form without trailing zeros.
func appendFixed(dst []byte, m int64, scale int) []byte { return market.AppendFixed(dst, m, scale) }

// toDecimal returns m × 10^-scale as an exact decimal.
func toDecimal(m int64, scale int) decimal.Decimal { return decimal.New(m, -int32(scale)) }

// AppendDecimal appends m × 10^-scale (a mantissa as Levels hands it out, at the scale
// Scales returns) in plain form without trailing zeros, as the book's JSON writes it.
func AppendDecimal(dst []byte, m int64, scale int) []byte { return appendFixed(dst, m, scale) }
