package book

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseFixed(t *testing.T) {
	for _, tc := range []struct {
		in          string
		mant        int64
		scale, text int
		err         bool
	}{
		{"0.35210000", 3521, 4, 8, false},
		{"0.00006547", 6547, 8, 8, false},
		{"100", 100, 0, 0, false},
		{"100.50", 1005, 1, 2, false},
		{"10.05", 1005, 2, 2, false},
		{"0", 0, 0, 0, false},
		{"0.00000000", 0, 0, 8, false},
		{"007.5", 75, 1, 1, false},
		{"1e-5", 1, 5, 5, false},
		{"1.5E3", 1500, 0, 0, false},
		{"123456789012345678", 123456789012345678, 0, 0, false},
		{"0.000000000000000001", 1, 18, 18, false},
		{"1234567890.12345678", 123456789012345678, 8, 8, false},
		{"", 0, 0, 0, true},
		{"-1", 0, 0, 0, true},
		{"abc", 0, 0, 0, true},
		{"1.", 0, 0, 0, true},
		{"1.2.3", 0, 0, 0, true},
		{"1234567890123456789", 0, 0, 0, true},   // 19 significant digits
		{"0.0000000000000000001", 0, 0, 0, true}, // 19 decimals
		{"1e400", 0, 0, 0, true},
		{"1e999999999", 0, 0, 0, true},
		{"1e-999999999", 0, 0, 0, true},
	} {
		f, err := parseFixed([]byte(tc.in))
		if tc.err {
			if !errors.Is(err, ErrNumber) {
				t.Errorf("%q: err %v, want ErrNumber", tc.in, err)
			}
			continue
		}
		if err != nil || f.mant != tc.mant || f.scale != tc.scale || f.text != tc.text {
			t.Errorf("%q = %+v, %v; want %d %d %d", tc.in, f, err, tc.mant, tc.scale, tc.text)
		}
	}
}

func TestAppendFixed(t *testing.T) {
	for _, tc := range []struct {
		m     int64
		scale int
		want  string
	}{
		{3521, 4, "0.3521"}, {35210000, 8, "0.3521"}, {5, 2, "0.05"}, {12345, 2, "123.45"},
		{100, 0, "100"}, {1000, 1, "100"}, {0, 8, "0"}, {-15, 1, "-1.5"}, {1, 18, "0.000000000000000001"},
		{9223372036854775807, 18, "9.223372036854775807"},
	} {
		if got := string(appendFixed(nil, tc.m, tc.scale)); got != tc.want {
			t.Errorf("appendFixed(%d, %d) = %q, want %q", tc.m, tc.scale, got, tc.want)
		}
	}
}

// FuzzFixed: whatever parses is exactly the decimal shopspring reads, and prints as
// its canonical form.
func FuzzFixed(f *testing.F) {
	for _, s := range []string{"0.35210000", "100", "0", "1e-5", "007.50", "123456789012345678", "0.1e2", ".5", "1E+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fx, err := parseFixed([]byte(s))
		if err != nil {
			return
		}
		want, err := decimal.NewFromString(s)
		if err != nil {
			t.Fatalf("%q parsed to %+v but is no decimal", s, fx)
		}
		got := toDecimal(fx.mant, fx.scale)
		if !got.Equal(want) {
			t.Fatalf("%q = %s, want %s", s, got, want)
		}
		if fx.scale > maxScale || fx.text < fx.scale || fx.mant < 0 {
			t.Fatalf("%q: %+v", s, fx)
		}
		if fx.mant != 0 && fx.mant%10 == 0 && fx.scale > 0 {
			t.Fatalf("%q: scale %d is not the significant one", s, fx.scale)
		}
		if p := string(appendFixed(nil, fx.mant, fx.scale)); p != want.String() {
			t.Fatalf("%q prints %q, want %q", s, p, want.String())
		}
	})
}
