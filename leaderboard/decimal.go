package leaderboard

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// Limits of a value a board accepts. They keep sorted-set members short; anything a
// market or a trader produces fits easily.
const (
	// MaxDigits is the most significant digits a value may have.
	MaxDigits = 80
	// MaxExponent bounds the decimal exponent: |value| < 10^MaxExponent and any
	// non-zero |value| >= 10^-MaxExponent.
	MaxExponent = 1000
)

// The order-preserving encoding of a decimal: comparing two encodings byte by byte
// orders them as the numbers they encode, and no encoding is a prefix of another.
//
//	negative  '0' <4-digit 9999-(e+5000)> <digits, each 9-d> '~'
//	zero      '1'
//	positive  '2' <4-digit e+5000> <digits> '!'
//
// where value = ±0.<digits> × 10^e, digits without trailing zeros, the first non-zero.
// A larger exponent means a larger magnitude because the mantissa is normalized; the
// terminators sort below ('!') or above ('~') every digit, so 0.12 < 0.123 and
// -0.12 > -0.123. The sorted set breaks ties of its float64 score by this member prefix,
// which makes the whole order exact.
const (
	expOffset = 5000
	posTerm   = '!'
	negTerm   = '~'
)

// encodeValue returns the order-preserving encoding of d, its float64 score (correctly
// rounded, so monotonic in d) and its canonical decimal string. It returns an error
// wrapping ErrInvalidValue when d is outside the limits.
func encodeValue(d decimal.Decimal) (enc string, score float64, canon string, err error) {
	if d.IsZero() {
		return "1", 0, "0", nil
	}
	digits := d.Coefficient().String()
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	trimmed := strings.TrimRight(digits, "0")
	exp := int64(d.Exponent()) + int64(len(digits)-len(trimmed))
	digits = trimmed
	e := exp + int64(len(digits))
	if len(digits) > MaxDigits {
		return "", 0, "", fmt.Errorf("%w: %d significant digits, at most %d", ErrInvalidValue, len(digits), MaxDigits)
	}
	if e > MaxExponent || e < -MaxExponent {
		return "", 0, "", fmt.Errorf("%w: magnitude 10^%d outside 10^±%d", ErrInvalidValue, e, MaxExponent)
	}
	var b strings.Builder
	b.Grow(len(digits) + 6)
	off := e + expOffset
	if neg {
		b.WriteByte('0')
		writeExp(&b, 9999-off)
		for i := 0; i < len(digits); i++ {
			b.WriteByte('9' - digits[i] + '0')
		}
		b.WriteByte(negTerm)
	} else {
		b.WriteByte('2')
		writeExp(&b, off)
		b.WriteString(digits)
		b.WriteByte(posTerm)
	}
	coef, _ := new(big.Int).SetString(digits, 10)
	if neg {
		coef.Neg(coef)
	}
	norm := decimal.NewFromBigInt(coef, int32(exp))
	score, _ = norm.Float64()
	return b.String(), score, norm.String(), nil
}

func writeExp(b *strings.Builder, n int64) {
	s := strconv.FormatInt(n, 10)
	for i := len(s); i < 4; i++ {
		b.WriteByte('0')
	}
	b.WriteString(s)
}

// encLen returns the length of the encoded value at the start of s, or -1 when s does
// not start with one.
func encLen(s string) int {
	if s == "" {
		return -1
	}
	switch s[0] {
	case '1':
		return 1
	case '0', '2':
		if len(s) < 7 {
			return -1
		}
		if i := strings.IndexAny(s[5:], string([]byte{posTerm, negTerm})); i > 0 {
			return 5 + i + 1
		}
	}
	return -1
}

// decodeValue parses an encoding made by encodeValue.
func decodeValue(enc string) (decimal.Decimal, error) {
	if enc == "1" {
		return decimal.Zero, nil
	}
	if encLen(enc) != len(enc) {
		return decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt value encoding %q", enc)
	}
	off, err := strconv.ParseInt(enc[1:5], 10, 64)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt value encoding %q", enc)
	}
	neg := enc[0] == '0'
	digits := []byte(enc[5 : len(enc)-1])
	if neg {
		off = 9999 - off
		for i, c := range digits {
			digits[i] = '9' - c + '0'
		}
	}
	coef, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt value encoding %q", enc)
	}
	if neg {
		coef.Neg(coef)
	}
	e := off - expOffset
	return decimal.NewFromBigInt(coef, int32(e-int64(len(digits)))), nil
}

// seqWidth is the width of the arrival number that follows the value in a sorted-set
// member: the member is <encoded value><arrival, 15 digits><member name>.
const seqWidth = 15

// splitZMember splits a sorted-set member into value encoding, arrival digits and the
// member name.
func splitZMember(z string) (enc, seq, member string, err error) {
	n := encLen(z)
	if n < 0 || len(z) < n+seqWidth {
		return "", "", "", fmt.Errorf("leaderboard: corrupt sorted-set member %q", z)
	}
	return z[:n], z[n : n+seqWidth], z[n+seqWidth:], nil
}
