package indicator

import (
	"fmt"
	"math"
	"time"
)

// OBVState is the streaming state of on-balance volume. Its zero value is ready to use.
type OBVState struct {
	Started   bool    `json:"started"`
	PrevClose float64 `json:"prev_close"`
	Value     float64 `json:"value"`
}

// Update adds the next bar and returns the OBV. As in TA-Lib the OBV starts at the first
// bar's volume; each later bar adds its volume when the close rises, subtracts it when
// the close falls.
func (s *OBVState) Update(close, volume float64) float64 {
	switch {
	case !s.Started:
		s.Started = true
		s.Value = volume
	case close > s.PrevClose:
		s.Value += volume
	case close < s.PrevClose:
		s.Value -= volume
	}
	s.PrevClose = close
	return s.Value
}

func (s *OBVState) validate() error { return checkFinite(s.PrevClose, s.Value) }

// OBV returns the on-balance volume of close and volume (TA-Lib TA_OBV), defined from
// the first bar. The slices must have the same length.
func OBV(close, volume []float64) []float64 {
	n := sameLen(close, volume)
	var s OBVState
	out := make([]float64, n)
	for i := range n {
		out[i] = s.Update(close[i], volume[i])
	}
	return out
}

// VWAPState is the streaming state of a rolling volume-weighted average price over the
// last Period bars. Create it with NewVWAPState.
type VWAPState struct {
	PV      SumWindow `json:"pv"`      // typical price * volume
	V       SumWindow `json:"v"`       // volume
	NonZero int       `json:"nonzero"` // bars in the window with non-zero volume
}

// NewVWAPState returns the state of a VWAP over period bars. It panics if period is
// outside [1, MaxPeriod].
func NewVWAPState(period int) *VWAPState {
	checkPeriod("vwap", period, 1)
	return &VWAPState{PV: newSumWindow(period), V: newSumWindow(period)}
}

// Update adds the next bar and returns Σ(typical price·volume)/Σ volume over the last
// period bars, where the typical price is (high+low+close)/3. It returns NaN for the
// first period-1 bars and whenever the window has no volume at all.
func (s *VWAPState) Update(high, low, close, volume float64) float64 {
	full := s.V.Full()
	if old := s.V.push(volume); full && old != 0 {
		s.NonZero--
	}
	if volume != 0 {
		s.NonZero++
	}
	s.PV.push(typicalPrice(high, low, close) * volume)
	if !s.V.Full() || s.NonZero == 0 {
		return math.NaN()
	}
	return s.PV.Sum / s.V.Sum
}

func (s *VWAPState) validate() error {
	if err := s.PV.validate(); err != nil {
		return err
	}
	if err := s.V.validate(); err != nil {
		return err
	}
	n := 0
	for _, v := range s.V.Buf {
		if v != 0 {
			n++
		}
	}
	if s.PV.Period != s.V.Period || len(s.PV.Buf) != len(s.V.Buf) || s.PV.Pos != s.V.Pos || n != s.NonZero {
		return fmt.Errorf("analysis: inconsistent vwap state")
	}
	return nil
}

// VWAP returns the rolling VWAP over period bars (see VWAPState.Update). The slices must
// have the same length. It panics if period is outside [1, MaxPeriod].
func VWAP(high, low, close, volume []float64, period int) []float64 {
	n := sameLen(high, low, close, volume)
	s := NewVWAPState(period)
	out := make([]float64, n)
	for i := range n {
		out[i] = s.Update(high[i], low[i], close[i], volume[i])
	}
	return out
}

// SessionVWAPState is the streaming state of a VWAP that restarts with the first bar of
// each UTC day. Its zero value is ready to use.
type SessionVWAPState struct {
	Started bool    `json:"started"`
	Day     int64   `json:"day"` // UTC day of the session: Unix seconds / 86400, floored
	PV      float64 `json:"pv"`
	V       float64 `json:"v"`
}

// Update adds the bar opening at t and returns Σ(typical price·volume)/Σ volume over the
// bars of t's UTC day so far, NaN while that day has no volume. Bars must come in time
// order: a bar of any other day than the current session's starts a new session.
func (s *SessionVWAPState) Update(t time.Time, high, low, close, volume float64) float64 {
	day := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		day--
	}
	if !s.Started || day != s.Day {
		*s = SessionVWAPState{Started: true, Day: day}
	}
	s.PV += typicalPrice(high, low, close) * volume
	s.V += volume
	if s.V == 0 {
		return math.NaN()
	}
	return s.PV / s.V
}

func (s *SessionVWAPState) validate() error { return checkFinite(s.PV, s.V) }

// SessionVWAP returns the session VWAP of each bar (see SessionVWAPState.Update). The
// slices must have the same length.
func SessionVWAP(times []time.Time, high, low, close, volume []float64) []float64 {
	n := sameLen(high, low, close, volume)
	if len(times) != n {
		panic("analysis: input series of different lengths")
	}
	var s SessionVWAPState
	out := make([]float64, n)
	for i := range n {
		out[i] = s.Update(times[i], high[i], low[i], close[i], volume[i])
	}
	return out
}

func typicalPrice(high, low, close float64) float64 { return (high + low + close) / 3 }
