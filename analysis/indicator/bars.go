package indicator

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bar is one OHLCV candle.
type Bar struct {
	Time                           time.Time
	Open, High, Low, Close, Volume float64
}

// Bars is a series of candles in time order, one slice per field, all the same length.
type Bars struct {
	Time   []time.Time
	Label  []string // the time column as read by ReadBarsCSV; nil means format Time
	Open   []float64
	High   []float64
	Low    []float64
	Close  []float64
	Volume []float64
}

// Len returns the number of bars.
func (b Bars) Len() int { return len(b.Close) }

// At returns bar i.
func (b Bars) At(i int) Bar {
	return Bar{Time: b.Time[i], Open: b.Open[i], High: b.High[i], Low: b.Low[i], Close: b.Close[i], Volume: b.Volume[i]}
}

// Append adds a bar at the end.
func (b *Bars) Append(bar Bar) {
	b.Time = append(b.Time, bar.Time)
	b.Open = append(b.Open, bar.Open)
	b.High = append(b.High, bar.High)
	b.Low = append(b.Low, bar.Low)
	b.Close = append(b.Close, bar.Close)
	b.Volume = append(b.Volume, bar.Volume)
}

func (b Bars) check() error {
	n := len(b.Close)
	if len(b.Time) != n || len(b.Open) != n || len(b.High) != n || len(b.Low) != n || len(b.Volume) != n ||
		(b.Label != nil && len(b.Label) != n) {
		return errors.New("analysis: bars have fields of different lengths")
	}
	return nil
}

var csvHeader = []string{"time", "open", "high", "low", "close", "volume"}

// ReadBarsCSV reads candles from CSV with the header time,open,high,low,close,volume.
// The time is RFC 3339 (e.g. 2021-04-17T16:43:37.075Z) or Unix seconds (e.g.
// 1618677817 or 1618677817.075), strictly increasing from row to row. Prices must be
// finite and non-negative with low <= open, close <= high; volume finite and
// non-negative. Errors name the line and the field, e.g.
// `analysis: line 7: field "high": 0.5 is below low 0.6`.
func ReadBarsCSV(r io.Reader) (Bars, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return Bars{}, errors.New("analysis: empty CSV: want header time,open,high,low,close,volume")
	}
	if err != nil {
		return Bars{}, fmt.Errorf("analysis: read CSV header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	if len(header) != len(csvHeader) {
		return Bars{}, fmt.Errorf("analysis: line 1: header has %d fields, want %s", len(header), strings.Join(csvHeader, ","))
	}
	for i, h := range header {
		if !strings.EqualFold(strings.TrimSpace(h), csvHeader[i]) {
			return Bars{}, fmt.Errorf("analysis: line 1: header field %d is %q, want %q", i+1, h, csvHeader[i])
		}
	}
	var b Bars
	b.Label = []string{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return Bars{}, fmt.Errorf("analysis: read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(csvHeader) {
			return Bars{}, fmt.Errorf("analysis: line %d: %d fields, want %d", line, len(rec), len(csvHeader))
		}
		bar, err := parseBar(rec)
		if err != nil {
			return Bars{}, fmt.Errorf("analysis: line %d: %w", line, err)
		}
		if n := b.Len(); n > 0 && !bar.Time.After(b.Time[n-1]) {
			return Bars{}, fmt.Errorf("analysis: line %d: field \"time\": %s is not after the previous bar's time", line, rec[0])
		}
		b.Append(bar)
		b.Label = append(b.Label, strings.TrimSpace(rec[0]))
	}
}

func parseBar(rec []string) (Bar, error) {
	var bar Bar
	t, err := parseTime(strings.TrimSpace(rec[0]))
	if err != nil {
		return bar, fmt.Errorf("field \"time\": %w", err)
	}
	bar.Time = t
	dst := []*float64{&bar.Open, &bar.High, &bar.Low, &bar.Close, &bar.Volume}
	for i, p := range dst {
		f := strings.TrimSpace(rec[i+1])
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return bar, fmt.Errorf("field %q: %q is not a finite number", csvHeader[i+1], f)
		}
		if v < 0 {
			return bar, fmt.Errorf("field %q: %s is negative", csvHeader[i+1], f)
		}
		*p = v
	}
	switch {
	case bar.High < bar.Low:
		return bar, fmt.Errorf("field \"high\": %v is below low %v", bar.High, bar.Low)
	case bar.Open < bar.Low || bar.Open > bar.High:
		return bar, fmt.Errorf("field \"open\": %v is outside [low %v, high %v]", bar.Open, bar.Low, bar.High)
	case bar.Close < bar.Low || bar.Close > bar.High:
		return bar, fmt.Errorf("field \"close\": %v is outside [low %v, high %v]", bar.Close, bar.Low, bar.High)
	}
	return bar, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || sec == "" || strings.HasPrefix(sec, "+") || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix seconds", s)
	}
	if n < -1e11 || n > 1e11 {
		return time.Time{}, fmt.Errorf("%q is out of range", s)
	}
	nanos, _ := strconv.Atoi((frac + "000000000")[:9])
	if strings.HasPrefix(sec, "-") {
		nanos = -nanos
	}
	return time.Unix(n, int64(nanos)).UTC(), nil
}

// WriteIndicatorsCSV writes one CSV row per bar to w: first the time (the text read by
// ReadBarsCSV, or RFC 3339 when bars.Label is nil), then one column per output of each
// spec, in order, named as Spec.Columns. Undefined values are empty cells; others are
// written with full precision (strconv.FormatFloat(v, 'g', -1, 64)). It returns an
// error for an invalid spec, two specs with the same column, or a write error.
func WriteIndicatorsCSV(w io.Writer, bars Bars, specs []Spec) error {
	if err := bars.check(); err != nil {
		return err
	}
	header := []string{"time"}
	seen := map[string]bool{"time": true}
	var cols [][]float64
	for _, s := range specs {
		out, err := s.Compute(bars)
		if err != nil {
			return err
		}
		for _, c := range s.Columns() {
			if seen[c] {
				return fmt.Errorf("analysis: column %q requested twice", c)
			}
			seen[c] = true
			header = append(header, c)
		}
		cols = append(cols, out...)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("analysis: write CSV: %w", err)
	}
	row := make([]string, len(header))
	for i := range bars.Len() {
		if bars.Label != nil {
			row[0] = bars.Label[i]
		} else {
			row[0] = bars.Time[i].Format(time.RFC3339Nano)
		}
		for j, c := range cols {
			row[j+1] = ""
			if !math.IsNaN(c[i]) {
				row[j+1] = strconv.FormatFloat(c[i], 'g', -1, 64)
			}
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("analysis: write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("analysis: write CSV: %w", err)
	}
	return nil
}
