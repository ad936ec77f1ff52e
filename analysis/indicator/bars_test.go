package indicator

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadBarsCSVErrors(t *testing.T) {
	const h = "time,open,high,low,close,volume\n"
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty CSV"},
		{"bad header", "time,open,high,low,close\n", "line 1: header has 5 fields"},
		{"wrong header field", "time,open,high,low,last,volume\n", `line 1: header field 5 is "last", want "close"`},
		{"short row", h + "1,1,1,1,1\n", "line 2: 5 fields, want 6"},
		{"bad time", h + "yesterday,1,1,1,1,1\n", `line 2: field "time": "yesterday" is neither RFC 3339 nor Unix seconds`},
		{"nan", h + "1,NaN,1,1,1,1\n", `line 2: field "open": "NaN" is not a finite number`},
		{"inf", h + "1,1,+Inf,1,1,1\n", `line 2: field "high": "+Inf" is not a finite number`},
		{"text", h + "1,1,1,x,1,1\n", `line 2: field "low": "x" is not a finite number`},
		{"negative volume", h + "1,1,1,1,1,-2\n", `line 2: field "volume": -2 is negative`},
		{"negative price", h + "1,-1,1,-1,1,2\n", `line 2: field "open": -1 is negative`},
		{"high below low", h + "1,1,1,2,1,1\n", `line 2: field "high": 1 is below low 2`},
		{"open above high", h + "1,3,2,1,1,1\n", `line 2: field "open": 3 is outside [low 1, high 2]`},
		{"close below low", h + "1,1,2,1,0.5,1\n", `line 2: field "close": 0.5 is outside [low 1, high 2]`},
		{"time not increasing", h + "2,1,1,1,1,1\n2,1,1,1,1,1\n", `line 3: field "time": 2 is not after the previous bar's time`},
		{"time going back", h + "2021-04-17T00:00:01Z,1,1,1,1,1\n2021-04-17T00:00:00Z,1,1,1,1,1\n", "line 3"},
		{"quote error", h + "1,\"1,1,1,1,1\n", "read CSV"},
		{"third line bad after blank", h + "1,1,1,1,1,1\n\n3,1,1,1,1,x\n", "line 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadBarsCSV(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ReadBarsCSV succeeded")
			}
			if !strings.HasPrefix(err.Error(), "analysis: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReadBarsCSVTimes(t *testing.T) {
	in := "time,open,high,low,close,volume\n" +
		"1618677817,1,2,0.5,1.5,10\n" +
		"1618677817.25,1,2,0.5,1.5,0\n" +
		"2021-04-17T16:43:38.5Z,1,2,0.5,1.5,0\n" +
		"2021-04-17T18:43:39+02:00,1,2,0.5,1.5,0\n"
	b, err := ReadBarsCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, tm := range b.Time {
		got = append(got, tm.UnixMilli())
	}
	want := []int64{1618677817000, 1618677817250, 1618677818500, 1618677819000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1618677817", "1618677817.25", "2021-04-17T16:43:38.5Z", "2021-04-17T18:43:39+02:00"}, b.Label); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func TestWriteIndicatorsCSV(t *testing.T) {
	bars := mustReadBars(t, "testdata/series/coinbase-skl-usd-trades-1s.csv")
	specs := mustSpecs(t, []string{"sma:2", "bbands:3,2", "obv"})
	var buf bytes.Buffer
	if err := WriteIndicatorsCSV(&buf, bars, specs); err != nil {
		t.Fatal(err)
	}
	recs := mustReadCSV(t, buf.Bytes())
	if diff := cmp.Diff([]string{"time", "sma_2", "bbands_upper_3_2", "bbands_middle_3_2", "bbands_lower_3_2", "obv"}, recs[0]); diff != "" {
		t.Fatalf("header (-want +got):\n%s", diff)
	}
	sma := SMA(bars.Close, 2)
	for i, rec := range recs[1:] {
		if rec[0] != bars.Label[i] {
			t.Errorf("row %d time %q, want %q", i, rec[0], bars.Label[i])
		}
		if (rec[1] == "") != math.IsNaN(sma[i]) {
			t.Errorf("row %d sma cell %q for value %v", i, rec[1], sma[i])
		}
	}
	if err := WriteIndicatorsCSV(&buf, bars, mustSpecs(t, []string{"sma:2", "SMA:2"})); err == nil ||
		!strings.Contains(err.Error(), `column "sma_2" requested twice`) {
		t.Errorf("duplicate column: err = %v", err)
	}
}

// TestSubCentKernels runs every kernel on a real sub-cent series and on the same series
// scaled by 2^27 (exact in binary floating point): since no kernel uses a fixed epsilon,
// price-valued outputs scale exactly and dimensionless ones do not change.
func TestSubCentKernels(t *testing.T) {
	bars := mustReadBars(t, "testdata/series/coinbase-skl-btc-book-10.csv")
	const scale = 1 << 27
	big := bars
	big.Open, big.High, big.Low, big.Close = scaled(bars.Open, scale), scaled(bars.High, scale), scaled(bars.Low, scale), scaled(bars.Close, scale)
	for _, spec := range mustSpecs(t, allSpecs) {
		t.Run(spec.String(), func(t *testing.T) {
			small, err := spec.Compute(bars)
			if err != nil {
				t.Fatal(err)
			}
			large, err := spec.Compute(big)
			if err != nil {
				t.Fatal(err)
			}
			unit := 1.0
			switch spec.Name {
			case "sma", "ema", "wma", "macd", "bbands", "atr", "vwap":
				unit = scale
			}
			for c := range small {
				for i := range small[c] {
					if !sameBits(small[c][i]*unit, large[c][i]) {
						t.Fatalf("%s bar %d: %v * 2^27 != %v", spec.Columns()[c], i, small[c][i], large[c][i])
					}
				}
			}
		})
	}
}

func scaled(xs []float64, k float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * k
	}
	return out
}

func FuzzReadBarsCSV(f *testing.F) {
	f.Add("time,open,high,low,close,volume\n1,1,2,0.5,1.5,10\n2,1.5,1.5,1.5,1.5,0\n")
	f.Add("time,open,high,low,close,volume\n2021-04-17T16:43:37Z,0.79,0.8,0.78,0.79,100\n")
	f.Add("\ufefftime,open,high,low,close,volume\r\n1.5,1e-8,1e-8,1e-8,1e-8,0\r\n")
	f.Add("time,open,high,low,close,volume\n\"1\",\"2\",3,1,2,0x1p-3\n")
	f.Add("time,open,high,low,close,volume\n1,NaN,1,1,1,1\n")
	f.Add("time,open,high,low,close\n")
	if data, err := os.ReadFile("testdata/series/coinbase-skl-usd-trades-1s.csv"); err == nil {
		f.Add(string(data))
	}
	specs := mustSpecs(f, allSpecs)
	f.Fuzz(func(t *testing.T, in string) {
		bars, err := ReadBarsCSV(strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "analysis: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		for i := range bars.Len() {
			b := bars.At(i)
			for _, v := range []float64{b.Open, b.High, b.Low, b.Close, b.Volume} {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Fatalf("bar %d accepted with %v", i, v)
				}
			}
			if b.Low > b.High || b.Open < b.Low || b.Open > b.High || b.Close < b.Low || b.Close > b.High {
				t.Fatalf("bar %d accepted out of range: %+v", i, b)
			}
			if i > 0 && !b.Time.After(bars.Time[i-1]) {
				t.Fatalf("bar %d time not increasing", i)
			}
		}
		var out bytes.Buffer
		if err := WriteIndicatorsCSV(&out, bars, specs); err != nil {
			t.Fatalf("write accepted bars: %v", err)
		}
	})
}
