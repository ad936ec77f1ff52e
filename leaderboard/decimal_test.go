package leaderboard

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestEncodeValueOrderAndRoundTrip(t *testing.T) {
	fixed := []string{
		"0", "1", "-1", "0.1", "0.12", "0.123", "-0.12", "-0.123", "10", "9.99", "-9.99", "-10",
		"9007199254740993", "9007199254740992", "12345678901234567890.123456789",
		"12345678901234567890.123456788", "-12345678901234567890.123456789", "1e-30", "-1e-30",
		"1e300", "1e400", "-1e400", "100", "1000.000",
	}
	var ds []decimal.Decimal
	for _, s := range fixed {
		ds = append(ds, decimal.RequireFromString(s))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		coef := rng.Int64N(2_000_000_000_000) - 1_000_000_000_000
		ds = append(ds, decimal.New(coef, int32(rng.IntN(60)-30)))
	}
	encs := make([]string, len(ds))
	for i, d := range ds {
		enc, score, canon, err := encodeValue(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		encs[i] = enc
		back, err := decodeValue(enc)
		if err != nil || !back.Equal(d) || back.String() != canon {
			t.Fatalf("%s: encoded %q decoded %s (%v), canonical %s", d, enc, back, err, canon)
		}
		if f, _ := d.Float64(); f != score {
			t.Fatalf("%s: score %v, want %v", d, score, f)
		}
		if encLen(enc+"000000000000001member") != len(enc) {
			t.Fatalf("%s: encLen of %q wrong", d, enc)
		}
	}
	for i := range ds {
		for j := range ds {
			if got, want := strings.Compare(encs[i], encs[j]), ds[i].Cmp(ds[j]); got != want {
				t.Fatalf("compare %s %s: encodings give %d, values %d (%q %q)", ds[i], ds[j], got, want, encs[i], encs[j])
			}
		}
	}
}

func TestEncodeValueLimits(t *testing.T) {
	for _, s := range []string{"1e1001", "1e-1002", "1" + strings.Repeat("1", MaxDigits)} {
		if _, _, _, err := encodeValue(decimal.RequireFromString(s)); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%.20s…: err %v, want ErrInvalidValue", s, err)
		}
	}
}
