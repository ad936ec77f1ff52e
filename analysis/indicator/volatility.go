package indicator

import (
	"fmt"
	"math"
)

// BBandsState is the streaming state of Bollinger Bands. Create it with NewBBandsState.
//
// The variance is computed from sums of deviations from Shift, a recent mean of the
// window, so that it does not cancel catastrophically for tiny or large prices; the sums
// are recomputed from the window each time the ring wraps.
type BBandsState struct {
	Window  SumWindow `json:"window"`
	DevUp   float64   `json:"dev_up"`
	DevDown float64   `json:"dev_down"`
	Shift   float64   `json:"shift"`
	Sum1    float64   `json:"sum1"` // Σ (x - Shift) over the window
	Sum2    float64   `json:"sum2"` // Σ (x - Shift)² over the window
}

// NewBBandsState returns the state of Bollinger Bands over period values, the bands
// devUp and devDown population standard deviations above and below the SMA. It panics if
// period is outside [2, MaxPeriod] or a deviation is negative or not finite.
func NewBBandsState(period int, devUp, devDown float64) *BBandsState {
	checkPeriod("bbands", period, 2)
	for _, d := range []float64{devUp, devDown} {
		if !(d >= 0) || math.IsInf(d, 0) {
			panic(fmt.Sprintf("analysis: bbands deviation %v not a finite non-negative number", d))
		}
	}
	return &BBandsState{Window: newSumWindow(period), DevUp: devUp, DevDown: devDown}
}

// Update adds the next value and returns the upper, middle (SMA) and lower band, NaN
// for the first period-1 values. Unlike TA-Lib, a positive variance is never treated as
// zero, however small.
func (s *BBandsState) Update(x float64) (upper, middle, lower float64) {
	w := &s.Window
	if len(w.Buf) == 0 {
		s.Shift = x
	}
	d := x - s.Shift
	if w.Full() {
		o := w.Buf[w.Pos] - s.Shift
		s.Sum1 += d - o
		s.Sum2 += d*d - o*o
	} else {
		s.Sum1 += d
		s.Sum2 += d * d
	}
	w.push(x)
	if !w.Full() {
		return math.NaN(), math.NaN(), math.NaN()
	}
	p := float64(w.Period)
	middle = w.Sum / p
	if w.Pos == 0 {
		s.Shift = middle
		s.Sum1, s.Sum2 = 0, 0
		for _, v := range w.Buf {
			d := v - s.Shift
			s.Sum1 += d
			s.Sum2 += d * d
		}
	}
	m1 := s.Sum1 / p
	variance := s.Sum2/p - m1*m1
	sd := 0.0
	if variance > 0 {
		sd = math.Sqrt(variance)
	}
	return middle + s.DevUp*sd, middle, middle - s.DevDown*sd
}

func (s *BBandsState) validate() error {
	if err := s.Window.validate(); err != nil {
		return err
	}
	if s.Window.Period < 2 || !(s.DevUp >= 0) || !(s.DevDown >= 0) {
		return fmt.Errorf("analysis: inconsistent bbands state")
	}
	return checkFinite(s.DevUp, s.DevDown, s.Shift, s.Sum1, s.Sum2)
}

// BBands returns Bollinger Bands of in (TA-Lib TA_BBANDS with an SMA): upper, middle and
// lower band, NaN for the first period-1 values, the bands devUp and devDown population
// standard deviations from the middle. It panics if period is outside [2, MaxPeriod] or
// a deviation is negative or not finite.
func BBands(in []float64, period int, devUp, devDown float64) (upper, middle, lower []float64) {
	s := NewBBandsState(period, devUp, devDown)
	upper = make([]float64, len(in))
	middle = make([]float64, len(in))
	lower = make([]float64, len(in))
	for i, x := range in {
		upper[i], middle[i], lower[i] = s.Update(x)
	}
	return upper, middle, lower
}

// ATRState is the streaming state of Wilder's average true range. Create it with
// NewATRState.
type ATRState struct {
	Period    int     `json:"period"`
	Count     int     `json:"count"` // bars seen, capped at Period+1
	PrevClose float64 `json:"prev_close"`
	Value     float64 `json:"value"` // sum of true ranges while seeding, then the ATR
}

// NewATRState returns the state of an ATR over period bars. It panics if period is
// outside [1, MaxPeriod].
func NewATRState(period int) *ATRState {
	checkPeriod("atr", period, 1)
	return &ATRState{Period: period}
}

// Update adds the next bar and returns the ATR, NaN for the first period bars. As in
// TA-Lib the first ATR is the mean of the true ranges of bars 1..period (bar 0 has no
// previous close), later ones are smoothed with factor 1/period.
func (s *ATRState) Update(high, low, close float64) float64 {
	if s.Count == 0 {
		s.Count = 1
		s.PrevClose = close
		return math.NaN()
	}
	tr := trueRange(high, low, s.PrevClose)
	s.PrevClose = close
	p := float64(s.Period)
	if s.Count <= s.Period {
		s.Value += tr
		s.Count++
		if s.Count <= s.Period {
			return math.NaN()
		}
		s.Value /= p
		return s.Value
	}
	s.Value = (s.Value*(p-1) + tr) / p
	return s.Value
}

func (s *ATRState) validate() error {
	if s.Period < 1 || s.Period > MaxPeriod || s.Count < 0 || s.Count > s.Period+1 {
		return fmt.Errorf("analysis: inconsistent atr state (period %d, count %d)", s.Period, s.Count)
	}
	return checkFinite(s.PrevClose, s.Value)
}

// ATR returns Wilder's average true range (TA-Lib TA_ATR), NaN for the first period bars.
// The three slices must have the same length. It panics if period is outside
// [1, MaxPeriod].
func ATR(high, low, close []float64, period int) []float64 {
	n := sameLen(high, low, close)
	s := NewATRState(period)
	out := make([]float64, n)
	for i := range n {
		out[i] = s.Update(high[i], low[i], close[i])
	}
	return out
}

// trueRange is the largest of high-low, |high-prevClose| and |low-prevClose|.
func trueRange(high, low, prevClose float64) float64 {
	tr := high - low
	if d := math.Abs(high - prevClose); d > tr {
		tr = d
	}
	if d := math.Abs(low - prevClose); d > tr {
		tr = d
	}
	return tr
}
