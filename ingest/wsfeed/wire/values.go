package wire

import (
	"errors"
	"time"

	"github.com/shopspring/decimal"
)

// Errors of the value parsers.
var (
	ErrDecimal = errors.New("wire: bad decimal")
	ErrTime    = errors.New("wire: bad time")
)

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// Decimal parses a decimal from its exact text: an optional '-', digits with an
// optional '.', and an optional exponent ("1.5e-05", as JSON numbers may be written).
// Up to 18 significant digits are parsed without allocating a string; longer values go
// through decimal.NewFromString. The result keeps the text's exponent, so "0.3500"
// equals decimal.RequireFromString("0.3500") in value and scale.
func Decimal(b []byte) (decimal.Decimal, error) {
	i := 0
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		i++
	}
	var mant int64
	digits, exp := 0, int32(0)
	seenDot, any := false, false
	for ; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			any = true
			if mant == 0 && c == '0' {
				// Leading zeros add no significant digit, only scale after the point.
				if seenDot {
					exp--
				}
				continue
			}
			if digits++; digits > 18 {
				return slowDecimal(b)
			}
			mant = mant*10 + int64(c-'0')
			if seenDot {
				exp--
			}
			continue
		}
		if c == '.' && !seenDot {
			seenDot = true
			continue
		}
		break
	}
	if !any {
		return decimal.Decimal{}, ErrDecimal
	}
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return decimal.Decimal{}, ErrDecimal
		}
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i == len(b) || len(b)-i > 4 {
			return decimal.Decimal{}, ErrDecimal
		}
		var e int32
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return decimal.Decimal{}, ErrDecimal
			}
			e = e*10 + int32(c-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if neg {
		mant = -mant
	}
	return decimal.New(mant, exp), nil
}

func slowDecimal(b []byte) (decimal.Decimal, error) {
	if len(b) > 64 {
		return decimal.Decimal{}, ErrDecimal
	}
	d, err := decimal.NewFromString(string(b))
	if err != nil {
		return decimal.Decimal{}, ErrDecimal
	}
	return d, nil
}

// UnixMilli returns the UTC time of a count of milliseconds since the epoch.
func UnixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// UnixFrac parses seconds since the epoch with an optional fraction of up to nine
// digits ("1618678142.557535", Kraken v1), exactly.
func UnixFrac(b []byte) (time.Time, error) {
	sec, frac, _ := cut(b, '.')
	s, ok := ParseInt(sec)
	if !ok || s < 0 || len(frac) > 9 {
		return time.Time{}, ErrTime
	}
	var ns int64
	for _, c := range frac {
		if c < '0' || c > '9' {
			return time.Time{}, ErrTime
		}
		ns = ns*10 + int64(c-'0')
	}
	ns *= pow10[9-len(frac)]
	return time.Unix(s, ns).UTC(), nil
}

func cut(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// RFC3339 parses "2021-04-17T16:43:37.089723Z" style times (UTC, 'Z', any number of
// fractional digits up to nine) without allocating, and other RFC 3339 forms through
// time.Parse.
func RFC3339(b []byte) (time.Time, error) {
	// YYYY-MM-DDTHH:MM:SS = 19 bytes, then optional .fraction, then Z.
	if len(b) >= 20 && b[len(b)-1] == 'Z' && b[4] == '-' && b[7] == '-' && (b[10] == 'T' || b[10] == 't') &&
		b[13] == ':' && b[16] == ':' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		s, ok6 := digits(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 60 {
			rest := b[19 : len(b)-1]
			var ns int
			if len(rest) > 0 {
				if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
					return time.Time{}, ErrTime
				}
				f, ok := digits(rest[1:])
				if !ok {
					return time.Time{}, ErrTime
				}
				ns = f * int(pow10[10-len(rest)])
			}
			t := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
			if t.Day() != d {
				return time.Time{}, ErrTime // e.g. February 30
			}
			return t, nil
		}
	}
	if len(b) > 64 {
		return time.Time{}, ErrTime
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, ErrTime
	}
	return t.UTC(), nil
}

func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}
