package indicator

import (
	"fmt"
	"math"
)

// RSIState is the streaming state of Wilder's relative strength index. Create it with
// NewRSIState.
type RSIState struct {
	Period int     `json:"period"`
	Count  int     `json:"count"` // values seen, capped at Period+1
	Prev   float64 `json:"prev"`  // previous value
	Gain   float64 `json:"gain"`  // sum of gains while seeding, then Wilder's average gain
	Loss   float64 `json:"loss"`  // same for losses (a positive number)
}

// NewRSIState returns the state of an RSI over period changes. It panics if period is
// outside [2, MaxPeriod].
func NewRSIState(period int) *RSIState {
	checkPeriod("rsi", period, 2)
	return &RSIState{Period: period}
}

// Update adds the next value and returns the RSI, NaN for the first period values. The
// RSI is 0 when the average gain and loss are both exactly zero.
func (s *RSIState) Update(x float64) float64 {
	if s.Count == 0 {
		s.Count = 1
		s.Prev = x
		return math.NaN()
	}
	d := x - s.Prev
	s.Prev = x
	p := float64(s.Period)
	if s.Count <= s.Period {
		if d < 0 {
			s.Loss -= d
		} else {
			s.Gain += d
		}
		s.Count++
		if s.Count <= s.Period {
			return math.NaN()
		}
		s.Loss /= p
		s.Gain /= p
	} else {
		s.Loss *= p - 1
		s.Gain *= p - 1
		if d < 0 {
			s.Loss -= d
		} else {
			s.Gain += d
		}
		s.Loss /= p
		s.Gain /= p
	}
	if t := s.Gain + s.Loss; t != 0 {
		return 100 * (s.Gain / t)
	}
	return 0
}

func (s *RSIState) validate() error {
	if s.Period < 2 || s.Period > MaxPeriod || s.Count < 0 || s.Count > s.Period+1 {
		return fmt.Errorf("analysis: inconsistent rsi state (period %d, count %d)", s.Period, s.Count)
	}
	return checkFinite(s.Prev, s.Gain, s.Loss)
}

// RSI returns Wilder's RSI of in (TA-Lib TA_RSI): NaN for the first period values, then
// 100*avgGain/(avgGain+avgLoss) with the averages seeded by the mean of the first period
// changes and smoothed with factor 1/period. It panics if period is outside
// [2, MaxPeriod].
func RSI(in []float64, period int) []float64 {
	checkPeriod("rsi", period, 2)
	n := len(in)
	out := make([]float64, n)
	if n == 0 {
		return out
	}
	// As RSIState.Update, operation for operation.
	out[0] = math.NaN()
	p := float64(period)
	var gain, loss float64
	prev := in[0]
	for i := 1; i < min(period+1, n); i++ {
		d := in[i] - prev
		prev = in[i]
		if d < 0 {
			loss -= d
		} else {
			gain += d
		}
		out[i] = math.NaN()
	}
	if n <= period {
		return out
	}
	loss /= p
	gain /= p
	out[period] = rsiValue(gain, loss)
	for i := period + 1; i < n; i++ {
		d := in[i] - prev
		prev = in[i]
		loss *= p - 1
		gain *= p - 1
		if d < 0 {
			loss -= d
		} else {
			gain += d
		}
		loss /= p
		gain /= p
		out[i] = rsiValue(gain, loss)
	}
	return out
}

func rsiValue(gain, loss float64) float64 {
	if t := gain + loss; t != 0 {
		return 100 * (gain / t)
	}
	return 0
}

// MACDState is the streaming state of MACD. Create it with NewMACDState.
type MACDState struct {
	Skip   int      `json:"skip"` // values still to skip before the fast EMA starts
	Fast   EMAState `json:"fast"`
	Slow   EMAState `json:"slow"`
	Signal EMAState `json:"signal"`
}

// NewMACDState returns the state of MACD(fast, slow, signal). It panics unless
// 2 <= fast < slow <= MaxPeriod and 1 <= signal <= MaxPeriod.
func NewMACDState(fast, slow, signal int) *MACDState {
	checkPeriod("macd fast", fast, 2)
	checkPeriod("macd slow", slow, 2)
	checkPeriod("macd signal", signal, 1)
	if fast >= slow {
		panic(fmt.Sprintf("analysis: macd fast period %d not below slow period %d", fast, slow))
	}
	return &MACDState{
		Skip:   slow - fast,
		Fast:   EMAState{Period: fast},
		Slow:   EMAState{Period: slow},
		Signal: EMAState{Period: signal},
	}
}

// Update adds the next value and returns the MACD line, its signal line and the
// histogram (line minus signal); all three are NaN for the first slow+signal-2 values.
//
// As in TA-Lib's TA_MACD the fast EMA starts late: it is seeded with the SMA of the fast
// values that end where the slow EMA's seed ends, so both EMAs are first defined on the
// same value.
func (s *MACDState) Update(x float64) (macd, signal, hist float64) {
	slow := s.Slow.Update(x)
	fast := math.NaN()
	if s.Skip > 0 {
		s.Skip--
	} else {
		fast = s.Fast.Update(x)
	}
	if !s.Slow.Ready() {
		return math.NaN(), math.NaN(), math.NaN()
	}
	m := fast - slow
	sig := s.Signal.Update(m)
	if !s.Signal.Ready() {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return m, sig, m - sig
}

func (s *MACDState) validate() error {
	for _, e := range []*EMAState{&s.Fast, &s.Slow, &s.Signal} {
		if err := e.validate(); err != nil {
			return err
		}
	}
	if s.Fast.Period < 2 || s.Fast.Period >= s.Slow.Period || s.Skip < 0 || s.Skip > s.Slow.Period-s.Fast.Period {
		return fmt.Errorf("analysis: inconsistent macd state")
	}
	return nil
}

// MACD returns the MACD line, signal line and histogram of in (TA-Lib TA_MACD), each NaN
// for the first slow+signal-2 values. It panics unless 2 <= fast < slow <= MaxPeriod and
// 1 <= signal <= MaxPeriod.
func MACD(in []float64, fast, slow, signal int) (macd, sig, hist []float64) {
	s := NewMACDState(fast, slow, signal)
	macd = make([]float64, len(in))
	sig = make([]float64, len(in))
	hist = make([]float64, len(in))
	for i, x := range in {
		macd[i], sig[i], hist[i] = s.Update(x)
	}
	return macd, sig, hist
}

// StochState is the streaming state of the slow stochastic oscillator. Create it with
// NewStochState.
type StochState struct {
	FastK int      `json:"fast_k"`
	Count int      `json:"count"` // bars seen, capped at FastK
	High  Extremum `json:"high"`
	Low   Extremum `json:"low"`
	K     SMAState `json:"k"` // smooths fast %K into slow %K
	D     SMAState `json:"d"` // smooths slow %K into slow %D
}

// NewStochState returns the state of STOCH(fastK, slowK, slowD) with SMA smoothing
// (TA-Lib's default MA type). It panics if a period is outside [1, MaxPeriod].
func NewStochState(fastK, slowK, slowD int) *StochState {
	checkPeriod("stoch fast k", fastK, 1)
	checkPeriod("stoch slow k", slowK, 1)
	checkPeriod("stoch slow d", slowD, 1)
	return &StochState{
		FastK: fastK,
		High:  newExtremum(fastK, true),
		Low:   newExtremum(fastK, false),
		K:     *NewSMAState(slowK),
		D:     *NewSMAState(slowD),
	}
}

// Update adds the next bar and returns slow %K and slow %D, both NaN for the first
// fastK+slowK+slowD-3 bars. Fast %K is 100*(close-lowest low)/(highest high-lowest low)
// over fastK bars, and 0 when that range is exactly zero (as in TA-Lib).
func (s *StochState) Update(high, low, close float64) (k, d float64) {
	hh := s.High.push(high)
	ll := s.Low.push(low)
	if s.Count < s.FastK {
		s.Count++
		if s.Count < s.FastK {
			return math.NaN(), math.NaN()
		}
	}
	fastK := 0.0
	if diff := (hh - ll) / 100; diff != 0 {
		fastK = (close - ll) / diff
	}
	k = s.K.Update(fastK)
	if math.IsNaN(k) {
		return math.NaN(), math.NaN()
	}
	d = s.D.Update(k)
	if math.IsNaN(d) {
		return math.NaN(), math.NaN()
	}
	return k, d
}

func (s *StochState) validate() error {
	for _, err := range []error{s.High.validate(), s.Low.validate(), s.K.validate(), s.D.validate()} {
		if err != nil {
			return err
		}
	}
	if s.FastK < 1 || s.High.Period != s.FastK || s.Low.Period != s.FastK || !s.High.Max || s.Low.Max ||
		s.Count < 0 || s.Count > s.FastK {
		return fmt.Errorf("analysis: inconsistent stoch state")
	}
	return nil
}

// Stoch returns slow %K and slow %D (TA-Lib TA_STOCH with SMA smoothing), NaN for the
// first fastK+slowK+slowD-3 bars. The three slices must have the same length. It panics
// if a period is outside [1, MaxPeriod].
func Stoch(high, low, close []float64, fastK, slowK, slowD int) (k, d []float64) {
	n := sameLen(high, low, close)
	checkPeriod("stoch fast k", fastK, 1)
	checkPeriod("stoch slow k", slowK, 1)
	checkPeriod("stoch slow d", slowD, 1)
	k = make([]float64, n)
	d = make([]float64, n)
	lookback := fastK + slowK + slowD - 3
	if n <= lookback {
		fillNaN(k)
		fillNaN(d)
		return k, d
	}
	// Fast %K from fastK-1 on, into d as scratch. The extremes are the same values
	// StochState's monotonic queues give (a maximum is a maximum); the window is rescanned
	// only when its extreme leaves it, as TA-Lib does.
	fk := d[fastK-1:]
	hiIdx, loIdx := -1, -1
	var hh, ll float64
	for i := fastK - 1; i < n; i++ {
		start := i - fastK + 1
		if hiIdx < start {
			hiIdx, hh = start, high[start]
			for j := start + 1; j <= i; j++ {
				if high[j] >= hh {
					hiIdx, hh = j, high[j]
				}
			}
		} else if high[i] >= hh {
			hiIdx, hh = i, high[i]
		}
		if loIdx < start {
			loIdx, ll = start, low[start]
			for j := start + 1; j <= i; j++ {
				if low[j] <= ll {
					loIdx, ll = j, low[j]
				}
			}
		} else if low[i] <= ll {
			loIdx, ll = i, low[i]
		}
		v := 0.0
		if diff := (hh - ll) / 100; diff != 0 {
			v = (close[i] - ll) / diff
		}
		fk[i-fastK+1] = v
	}
	// Slow %K = SMA(fast %K), slow %D = SMA(slow %K), as the SMAStates compute them.
	smaRun(k[fastK-1:], fk, slowK)
	kOff := fastK + slowK - 2
	smaRun(d[kOff:], k[kOff:], slowD)
	fillNaN(k[:lookback])
	fillNaN(d[:lookback])
	return k, d
}

func fillNaN(xs []float64) {
	for i := range xs {
		xs[i] = math.NaN()
	}
}

func sameLen(xs ...[]float64) int {
	for _, x := range xs[1:] {
		if len(x) != len(xs[0]) {
			panic("analysis: input series of different lengths")
		}
	}
	return len(xs[0])
}
