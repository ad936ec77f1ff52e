package indicator

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goldenSpecs are the specs tools/talibgolden/golden.js evaluates with TA-Lib.
var goldenSpecs = []string{
	"sma:20", "sma:2", "ema:20", "ema:2", "wma:20", "wma:2", "rsi:14", "rsi:2",
	"macd:12,26,9", "macd:3,5,2", "bbands:20,2", "bbands:5,1.5,2.5", "atr:14", "atr:1",
	"stoch:14,3,3", "stoch:1,1,1", "obv", "adx:14", "adx:2",
}

// allSpecs adds the indicators TA-Lib does not have.
var allSpecs = append(append([]string(nil), goldenSpecs...), "vwap:20", "vwap:1", "vwap:session", "macd:5,35", "stoch:5,3,3")

func mustSpecs(tb testing.TB, texts []string) []Spec {
	tb.Helper()
	specs := make([]Spec, len(texts))
	for i, t := range texts {
		s, err := ParseSpec(t)
		if err != nil {
			tb.Fatalf("ParseSpec(%q): %v", t, err)
		}
		specs[i] = s
	}
	return specs
}

func seriesFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("testdata/series/*.csv")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no series in testdata/series: %v", err)
	}
	return files
}

func mustReadBars(tb testing.TB, path string) Bars {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b, err := ReadBarsCSV(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}

func mustReadCSV(tb testing.TB, data []byte) [][]string {
	tb.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// tolerance floor of each column, the magnitude below which agreement is absolute.
func floorFor(col string, b Bars) float64 {
	switch {
	case strings.HasPrefix(col, "rsi"), strings.HasPrefix(col, "stoch"), strings.HasPrefix(col, "adx"):
		return 1
	case col == "obv":
		return maxAbs(b.Volume)
	default:
		return maxAbs(b.Close)
	}
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

func close9(got, want, floor float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(floor, math.Max(math.Abs(got), math.Abs(want)))
}

// TestGoldenTALib checks every output against TA-Lib's, cell by cell, through the CSV
// writer: same header, same empty cells (lookback), values within 1e-9 relative.
func TestGoldenTALib(t *testing.T) {
	specs := mustSpecs(t, goldenSpecs)
	for _, path := range seriesFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".csv")
		t.Run(name, func(t *testing.T) {
			bars := mustReadBars(t, path)
			var buf bytes.Buffer
			if err := WriteIndicatorsCSV(&buf, bars, specs); err != nil {
				t.Fatal(err)
			}
			golden, err := os.ReadFile(filepath.Join("testdata/golden", name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			got, want := mustReadCSV(t, buf.Bytes()), mustReadCSV(t, golden)
			if len(got) != len(want) || len(got) != bars.Len()+1 {
				t.Fatalf("rows: got %d, golden %d, bars %d", len(got), len(want), bars.Len())
			}
			if strings.Join(got[0], ",") != strings.Join(want[0], ",") {
				t.Fatalf("header:\n got %v\nwant %v", got[0], want[0])
			}
			for c, col := range want[0] {
				floor := floorFor(col, bars)
				bad := 0
				for r := 1; r < len(want); r++ {
					g, w := got[r][c], want[r][c]
					if c == 0 || (g == "" && w == "") {
						if g != w {
							t.Errorf("row %d col %s: got %q, want %q", r, col, g, w)
						}
						continue
					}
					gv, gerr := strconv.ParseFloat(g, 64)
					wv, werr := strconv.ParseFloat(w, 64)
					if gerr != nil || werr != nil || !(close9(gv, wv, floor) || bandNoise(col, got[r], want[r], want[0], c)) {
						if bad++; bad <= 3 {
							t.Errorf("row %d (%s) col %s: got %q, TA-Lib %q", r, got[r][0], col, g, w)
						}
					}
				}
			}
		})
	}
}

// bandNoise reports whether a Bollinger band differs from TA-Lib's by no more than the
// rounding noise of TA-Lib's variance, which it computes as mean(x²) - mean(x)² with
// running sums: an absolute error of a few hundred ulps of mean², which the square root
// turns into a band error far above 1e-9 relative when the true variance is near zero.
// Ours computes deviations from the mean, so on a flat window it gives exactly zero.
func bandNoise(col string, got, want, header []string, c int) bool {
	var suffix string
	var sign float64
	switch {
	case strings.HasPrefix(col, "bbands_upper_"):
		suffix, sign = strings.TrimPrefix(col, "bbands_upper_"), 1
	case strings.HasPrefix(col, "bbands_lower_"):
		suffix, sign = strings.TrimPrefix(col, "bbands_lower_"), -1
	default:
		return false
	}
	mid := slices.Index(header, "bbands_middle_"+suffix)
	if mid < 0 {
		return false
	}
	parse := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	m := parse(want[mid])
	// Only the deviation matters: compare the band's distance from the middle, squared.
	dGot := sign * (parse(got[c]) - parse(got[mid]))
	dWant := sign * (parse(want[c]) - m)
	devs := strings.Split(suffix, "_")
	dev := parse(devs[len(devs)-1])
	if sign > 0 {
		dev = parse(devs[1])
	}
	return close9(parse(got[mid]), m, 0) && math.Abs(dGot*dGot-dWant*dWant) <= 1e-13*dev*dev*m*m
}

// TestTinyPricesDifferFromTALib shows on a real sub-cent series (SKL-BTC, ~1.3e-5) what
// TestGoldenTALib's scaled golden file corrects: TA-Lib's own bands collapse to the
// middle because it treats a variance below 1e-14 as zero, ours do not.
func TestTinyPricesDifferFromTALib(t *testing.T) {
	const name = "coinbase-skl-btc-book-10"
	bars := mustReadBars(t, filepath.Join("testdata/series", name+".csv"))
	raw, err := os.ReadFile(filepath.Join("testdata/golden", name+".talib-raw.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs := mustReadCSV(t, raw)
	col := -1
	for i, h := range recs[0] {
		if h == "bbands_upper_20_2" {
			col = i
		}
	}
	if col < 0 {
		t.Fatal("no bbands_upper_20_2 in raw golden file")
	}
	upper, middle, _ := BBands(bars.Close, 20, 2, 2)
	differ := 0
	for i := 19; i < bars.Len(); i++ {
		talibUpper, err := strconv.ParseFloat(recs[i+1][col], 64)
		if err != nil {
			t.Fatal(err)
		}
		if upper[i] > middle[i] && talibUpper == middle[i] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("TA-Lib's bands never collapsed where ours are open: the sub-cent case is not exercised")
	}
	t.Logf("%d of %d bars: TA-Lib's bands collapsed, ours open", differ, bars.Len()-19)
}

// TestStreamMatchesBatch checks, for every spec and series, that streaming gives bit for
// bit what Compute gives, also when the stream is saved to JSON and restored midway.
func TestStreamMatchesBatch(t *testing.T) {
	for _, path := range seriesFiles(t) {
		bars := mustReadBars(t, path)
		for _, spec := range mustSpecs(t, allSpecs) {
			t.Run(filepath.Base(path)+"/"+spec.String(), func(t *testing.T) {
				want, err := spec.Compute(bars)
				if err != nil {
					t.Fatal(err)
				}
				for _, split := range []int{0, 1, spec.Lookback(), bars.Len() / 2, bars.Len()} {
					if split > bars.Len() {
						continue
					}
					st, err := NewStream(spec)
					if err != nil {
						t.Fatal(err)
					}
					for i := range bars.Len() {
						if i == split {
							data, err := json.Marshal(st)
							if err != nil {
								t.Fatalf("marshal at %d: %v", i, err)
							}
							st = new(Stream)
							if err := json.Unmarshal(data, st); err != nil {
								t.Fatalf("unmarshal at %d: %v\n%s", i, err, data)
							}
						}
						got := st.Update(bars.At(i))
						for c := range got {
							if !sameBits(got[c], want[c][i]) {
								t.Fatalf("split %d, bar %d, %s: stream %v, batch %v", split, i, spec.Columns()[c], got[c], want[c][i])
							}
						}
					}
				}
			})
		}
	}
}

func sameBits(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// TestVWAPReference checks both VWAPs against a direct summation.
func TestVWAPReference(t *testing.T) {
	for _, path := range seriesFiles(t) {
		bars := mustReadBars(t, path)
		// Re-stamp the bars 5 hours apart so that sessions change every few bars.
		start := time.Date(2021, 4, 17, 2, 0, 0, 0, time.UTC)
		for i := range bars.Time {
			bars.Time[i] = start.Add(time.Duration(i) * 5 * time.Hour)
		}
		floor := maxAbs(bars.Close)
		for _, period := range []int{1, 3, 20} {
			t.Run(filepath.Base(path)+"/rolling_"+strconv.Itoa(period), func(t *testing.T) {
				got := VWAP(bars.High, bars.Low, bars.Close, bars.Volume, period)
				for i := range got {
					want := math.NaN()
					if i >= period-1 {
						want = directVWAP(bars, i-period+1, i)
					}
					if math.IsNaN(got[i]) != math.IsNaN(want) || (!math.IsNaN(want) && !close9(got[i], want, floor)) {
						t.Fatalf("bar %d: got %v, want %v", i, got[i], want)
					}
				}
			})
		}
		t.Run(filepath.Base(path)+"/session", func(t *testing.T) {
			got := SessionVWAP(bars.Time, bars.High, bars.Low, bars.Close, bars.Volume)
			first := 0
			for i := range got {
				if bars.Time[i].YearDay() != bars.Time[first].YearDay() {
					first = i
				}
				want := directVWAP(bars, first, i)
				if math.IsNaN(got[i]) != math.IsNaN(want) || (!math.IsNaN(want) && !close9(got[i], want, floor)) {
					t.Fatalf("bar %d: got %v, want %v", i, got[i], want)
				}
			}
		})
	}
}

func directVWAP(b Bars, from, to int) float64 {
	var pv, v float64
	for j := from; j <= to; j++ {
		pv += (b.High[j] + b.Low[j] + b.Close[j]) / 3 * b.Volume[j]
		v += b.Volume[j]
	}
	if v == 0 {
		return math.NaN()
	}
	return pv / v
}
