package indicator

import (
	"fmt"
	"math"
)

// SMAState is the streaming state of a simple moving average. Its zero value is not
// usable: create it with NewSMAState. It is JSON-serialisable.
type SMAState struct {
	Window SumWindow `json:"window"`
}

// NewSMAState returns the state of an SMA over period values. It panics if period is
// outside [1, MaxPeriod].
func NewSMAState(period int) *SMAState {
	checkPeriod("sma", period, 1)
	return &SMAState{Window: newSumWindow(period)}
}

// Update adds the next value and returns the SMA ending at it, NaN for the first
// period-1 values (TA-Lib's lookback).
func (s *SMAState) Update(x float64) float64 {
	s.Window.push(x)
	if !s.Window.Full() {
		return math.NaN()
	}
	return s.Window.Sum / float64(s.Window.Period)
}

func (s *SMAState) validate() error { return s.Window.validate() }

// SMA returns the simple moving average of in over period values: one value per input,
// NaN for the first period-1 (TA-Lib TA_SMA). It panics if period is outside
// [1, MaxPeriod].
func SMA(in []float64, period int) []float64 {
	checkPeriod("sma", period, 1)
	out := make([]float64, len(in))
	smaRun(out, in, period)
	return out
}

// smaRun writes to out[i] what SMAState.Update returns for in[i], fed in order from
// in[0]: the same operations in the same order (running sum, recomputed from the window
// whenever SumWindow's ring would wrap), so the results agree bit for bit, without the
// ring buffer. out and in must not overlap.
func smaRun(out, in []float64, period int) {
	n := len(in)
	p := float64(period)
	var sum float64
	for i := range min(period, n) {
		sum += in[i]
		out[i] = math.NaN()
	}
	if n < period {
		return
	}
	out[period-1] = sum / p
	left := period // values until the ring wraps
	for i := period; i < n; i++ {
		left--
		if left == 0 {
			left = period
			sum = sumOf(in[i-period+1 : i+1])
		} else {
			sum += in[i] - in[i-period]
		}
		out[i] = sum / p
	}
}

// EMAState is the streaming state of an exponential moving average seeded, as TA-Lib
// does by default, with the SMA of the first Period values. Create it with NewEMAState.
type EMAState struct {
	Period int     `json:"period"`
	Count  int     `json:"count"` // values seen, capped at Period
	Sum    float64 `json:"sum"`   // sum of the values seen while seeding
	Value  float64 `json:"value"` // current EMA once Count == Period
}

// NewEMAState returns the state of an EMA over period values. It panics if period is
// outside [1, MaxPeriod].
func NewEMAState(period int) *EMAState {
	checkPeriod("ema", period, 1)
	return &EMAState{Period: period}
}

// Ready reports whether the EMA is defined.
func (s *EMAState) Ready() bool { return s.Count == s.Period }

// Update adds the next value and returns the EMA, NaN for the first period-1 values.
// The smoothing factor is 2/(period+1).
func (s *EMAState) Update(x float64) float64 {
	if s.Count < s.Period {
		s.Count++
		s.Sum += x
		if s.Count < s.Period {
			return math.NaN()
		}
		s.Value = s.Sum / float64(s.Period)
		return s.Value
	}
	k := 2 / float64(s.Period+1)
	s.Value = (x-s.Value)*k + s.Value
	return s.Value
}

func (s *EMAState) validate() error {
	if s.Period < 1 || s.Period > MaxPeriod || s.Count < 0 || s.Count > s.Period {
		return fmt.Errorf("analysis: inconsistent ema state (period %d, count %d)", s.Period, s.Count)
	}
	return checkFinite(s.Sum, s.Value)
}

// EMA returns the exponential moving average of in (TA-Lib TA_EMA, default
// compatibility): NaN for the first period-1 values, then the SMA of the first period
// values, then x*k + prev*(1-k) with k = 2/(period+1). It panics if period is outside
// [1, MaxPeriod].
func EMA(in []float64, period int) []float64 {
	checkPeriod("ema", period, 1)
	out := make([]float64, len(in))
	n := len(in)
	var sum float64
	for i := range min(period, n) {
		sum += in[i]
		out[i] = math.NaN()
	}
	if n < period {
		return out
	}
	// As EMAState.Update, operation for operation.
	v := sum / float64(period)
	out[period-1] = v
	k := 2 / float64(period+1)
	for i := period; i < n; i++ {
		v = (in[i]-v)*k + v
		out[i] = v
	}
	return out
}

// WMAState is the streaming state of a linearly weighted moving average. Create it with
// NewWMAState.
type WMAState struct {
	Window   SumWindow `json:"window"`
	Weighted float64   `json:"weighted"` // sum of weight*value over the window, weights 1..n
}

// NewWMAState returns the state of a WMA over period values. It panics if period is
// outside [1, MaxPeriod].
func NewWMAState(period int) *WMAState {
	checkPeriod("wma", period, 1)
	return &WMAState{Window: newSumWindow(period)}
}

// Update adds the next value and returns the WMA ending at it (the newest value weighs
// period, the oldest 1), NaN for the first period-1 values. It keeps two running sums,
// Σx and Σ(weight·x), updated in O(1): adding x at weight n shifts every other weight
// down by one, i.e. subtracts Σx. Both sums are recomputed from the window, in one
// pass, each time its ring wraps, so rounding error cannot build up on long streams.
func (s *WMAState) Update(x float64) float64 {
	w := &s.Window
	p := float64(w.Period)
	if n := len(w.Buf); n < w.Period {
		s.Weighted += float64(n+1) * x
		w.Buf = append(w.Buf, x)
		w.Sum += x
		if n+1 < w.Period {
			return math.NaN()
		}
		return s.Weighted / (p * (p + 1) / 2)
	}
	s.Weighted += p*x - w.Sum
	old := w.Buf[w.Pos]
	w.Buf[w.Pos] = x
	w.Pos++
	if w.Pos == w.Period {
		w.Pos = 0
		w.Sum, s.Weighted = weightedSums(w.Buf)
	} else {
		w.Sum += x - old
	}
	return s.Weighted / (p * (p + 1) / 2)
}

// weightedSums returns Σx and Σ(i+1)·x[i], each accumulated in index order from zero.
func weightedSums(xs []float64) (sum, weighted float64) {
	for i, x := range xs {
		sum += x
		weighted += float64(i+1) * x
	}
	return sum, weighted
}

func (s *WMAState) validate() error {
	if err := s.Window.validate(); err != nil {
		return err
	}
	return checkFinite(s.Weighted)
}

// WMA returns the linearly weighted moving average of in (TA-Lib TA_WMA): NaN for the
// first period-1 values. It panics if period is outside [1, MaxPeriod].
func WMA(in []float64, period int) []float64 {
	checkPeriod("wma", period, 1)
	out := make([]float64, len(in))
	n := len(in)
	p := float64(period)
	div := p * (p + 1) / 2
	// As WMAState.Update, operation for operation, without the ring buffer.
	var sum, weighted float64
	for i := range min(period, n) {
		x := in[i]
		weighted += float64(i+1) * x
		sum += x
		out[i] = math.NaN()
	}
	if n < period {
		return out
	}
	out[period-1] = weighted / div
	left := period
	for i := period; i < n; i++ {
		x := in[i]
		weighted += p*x - sum
		left--
		if left == 0 {
			left = period
			sum, weighted = weightedSums(in[i-period+1 : i+1])
		} else {
			sum += x - in[i-period]
		}
		out[i] = weighted / div
	}
	return out
}
