package indicator

import (
	"fmt"
	"math"
)

// ADXState is the streaming state of Wilder's average directional index. Create it with
// NewADXState.
type ADXState struct {
	Period    int     `json:"period"`
	Count     int     `json:"count"` // bars seen, capped at 2*Period
	PrevHigh  float64 `json:"prev_high"`
	PrevLow   float64 `json:"prev_low"`
	PrevClose float64 `json:"prev_close"`
	PlusDM    float64 `json:"plus_dm"`  // Wilder-smoothed sum of +DM
	MinusDM   float64 `json:"minus_dm"` // Wilder-smoothed sum of -DM
	TR        float64 `json:"tr"`       // Wilder-smoothed sum of true ranges
	SumDX     float64 `json:"sum_dx"`   // sum of the first Period DX values
	Value     float64 `json:"value"`    // ADX once Count == 2*Period
}

// NewADXState returns the state of an ADX over period bars. It panics if period is
// outside [2, MaxPeriod].
func NewADXState(period int) *ADXState {
	checkPeriod("adx", period, 2)
	return &ADXState{Period: period}
}

// Update adds the next bar and returns the ADX, NaN for the first 2*period-1 bars.
//
// As in TA-Lib: +DM and -DM and the true range are summed over bars 1..period-1, then
// smoothed as sum - sum/period + new; the first ADX is the mean of the DX of bars
// period..2*period-1, later ones are smoothed with factor 1/period. A DX is undefined
// when the smoothed true range or the sum of the DIs is exactly zero; an undefined DX
// counts as 0 in the first mean and leaves the ADX unchanged afterwards.
func (s *ADXState) Update(high, low, close float64) float64 {
	if s.Count == 0 {
		s.Count = 1
		s.PrevHigh, s.PrevLow, s.PrevClose = high, low, close
		return math.NaN()
	}
	up := high - s.PrevHigh
	down := s.PrevLow - low
	var plusDM, minusDM float64
	if down > 0 && up < down {
		minusDM = down
	} else if up > 0 && up > down {
		plusDM = up
	}
	tr := trueRange(high, low, s.PrevClose)
	s.PrevHigh, s.PrevLow, s.PrevClose = high, low, close
	p := float64(s.Period)
	if s.Count < s.Period {
		s.PlusDM += plusDM
		s.MinusDM += minusDM
		s.TR += tr
		s.Count++
		return math.NaN()
	}
	s.PlusDM = s.PlusDM - s.PlusDM/p + plusDM
	s.MinusDM = s.MinusDM - s.MinusDM/p + minusDM
	s.TR = s.TR - s.TR/p + tr
	dx, ok := s.dx()
	if s.Count < 2*s.Period {
		if ok {
			s.SumDX += dx
		}
		s.Count++
		if s.Count < 2*s.Period {
			return math.NaN()
		}
		s.Value = s.SumDX / p
		return s.Value
	}
	if ok {
		s.Value = (s.Value*(p-1) + dx) / p
	}
	return s.Value
}

func (s *ADXState) dx() (float64, bool) {
	if s.TR == 0 {
		return 0, false
	}
	minusDI := 100 * (s.MinusDM / s.TR)
	plusDI := 100 * (s.PlusDM / s.TR)
	sum := minusDI + plusDI
	if sum == 0 {
		return 0, false
	}
	return 100 * (math.Abs(minusDI-plusDI) / sum), true
}

func (s *ADXState) validate() error {
	if s.Period < 2 || s.Period > MaxPeriod || s.Count < 0 || s.Count > 2*s.Period {
		return fmt.Errorf("analysis: inconsistent adx state (period %d, count %d)", s.Period, s.Count)
	}
	return checkFinite(s.PrevHigh, s.PrevLow, s.PrevClose, s.PlusDM, s.MinusDM, s.TR, s.SumDX, s.Value)
}

// ADX returns Wilder's average directional index (TA-Lib TA_ADX), NaN for the first
// 2*period-1 bars. The three slices must have the same length. It panics if period is
// outside [2, MaxPeriod].
func ADX(high, low, close []float64, period int) []float64 {
	n := sameLen(high, low, close)
	s := NewADXState(period)
	out := make([]float64, n)
	for i := range n {
		out[i] = s.Update(high[i], low[i], close[i])
	}
	return out
}
