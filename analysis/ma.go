package analysis

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
	s := NewSMAState(period)
	out := make([]float64, len(in))
	for i, x := range in {
		out[i] = s.Update(x)
	}
	return out
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
	s := NewEMAState(period)
	out := make([]float64, len(in))
	for i, x := range in {
		out[i] = s.Update(x)
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
// period, the oldest 1), NaN for the first period-1 values.
func (s *WMAState) Update(x float64) float64 {
	w := &s.Window
	if !w.Full() {
		s.Weighted += float64(len(w.Buf)+1) * x
		w.push(x)
	} else {
		s.Weighted += float64(w.Period)*x - w.Sum
		w.push(x)
		if w.Pos == 0 {
			// The ring just wrapped, so Buf is in time order: recompute exactly.
			s.Weighted = 0
			for i, v := range w.Buf {
				s.Weighted += float64(i+1) * v
			}
		}
	}
	if !w.Full() {
		return math.NaN()
	}
	p := float64(w.Period)
	return s.Weighted / (p * (p + 1) / 2)
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
	s := NewWMAState(period)
	out := make([]float64, len(in))
	for i, x := range in {
		out[i] = s.Update(x)
	}
	return out
}
