package indicator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrUnknownIndicator is returned (wrapped) by ParseSpec for a name it does not know.
var ErrUnknownIndicator = errors.New("analysis: unknown indicator")

// Spec is one parsed indicator specification such as "macd:12,26,9". Build it with
// ParseSpec; the zero Spec is invalid.
type Spec struct {
	// Name is the lower-case indicator name: sma, ema, wma, rsi, macd, bbands, atr,
	// stoch, obv, adx or vwap.
	Name string
	// Params holds every parameter, defaults filled in, in the order of the spec syntax.
	// Periods are whole numbers. For bbands: period, deviations up, deviations down.
	Params []float64
	// Session is set for "vwap:session", the VWAP that restarts every UTC day.
	Session bool
}

type indicatorDef struct {
	outputs  []string  // output names; nil for a single unnamed output
	defaults []float64 // parameters used when the spec omits them
	ints     int       // how many leading parameters are periods
	mins     []int     // smallest allowed value of each period
}

var indicators = map[string]indicatorDef{
	"sma":    {defaults: []float64{20}, ints: 1, mins: []int{2}},
	"ema":    {defaults: []float64{20}, ints: 1, mins: []int{2}},
	"wma":    {defaults: []float64{20}, ints: 1, mins: []int{2}},
	"rsi":    {defaults: []float64{14}, ints: 1, mins: []int{2}},
	"macd":   {outputs: []string{"", "signal", "hist"}, defaults: []float64{12, 26, 9}, ints: 3, mins: []int{2, 2, 2}},
	"bbands": {outputs: []string{"upper", "middle", "lower"}, defaults: []float64{20, 2, 2}, ints: 1, mins: []int{2}},
	"atr":    {defaults: []float64{14}, ints: 1, mins: []int{1}},
	"stoch":  {outputs: []string{"k", "d"}, defaults: []float64{14, 3, 3}, ints: 3, mins: []int{1, 1, 1}},
	"obv":    {},
	"adx":    {defaults: []float64{14}, ints: 1, mins: []int{2}},
	"vwap":   {defaults: []float64{20}, ints: 1, mins: []int{1}},
}

// ParseSpec parses an indicator specification "name[:p1,p2,...]". Names are case
// insensitive; omitted trailing parameters take their defaults:
//
//	sma:N  ema:N  wma:N  (N=20)      rsi:N  atr:N  adx:N  (N=14)
//	macd:FAST,SLOW,SIGNAL (12,26,9)  bbands:N,DEV[,DEVDOWN] (20,2; DEVDOWN=DEV)
//	stoch:FASTK,SLOWK,SLOWD (14,3,3) obv   vwap:N (rolling, N=20)   vwap:session
//
// It returns an error wrapping ErrUnknownIndicator for an unknown name, and a
// descriptive error for a malformed or out-of-range parameter.
func ParseSpec(s string) (Spec, error) {
	name, args, hasArgs := strings.Cut(strings.TrimSpace(s), ":")
	name = strings.ToLower(strings.TrimSpace(name))
	def, ok := indicators[name]
	if !ok {
		return Spec{}, fmt.Errorf("%w %q in spec %q", ErrUnknownIndicator, name, s)
	}
	var fields []string
	if hasArgs {
		fields = strings.Split(args, ",")
	}
	if name == "vwap" && len(fields) == 1 && strings.EqualFold(strings.TrimSpace(fields[0]), "session") {
		return Spec{Name: name, Session: true}, nil
	}
	if len(fields) > len(def.defaults) {
		return Spec{}, fmt.Errorf("analysis: spec %q: %s takes at most %d parameters, got %d", s, name, len(def.defaults), len(fields))
	}
	params := append([]float64(nil), def.defaults...)
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if i < def.ints {
			n, err := strconv.Atoi(f)
			if err != nil {
				return Spec{}, fmt.Errorf("analysis: spec %q: parameter %d (%q) is not a whole number", s, i+1, f)
			}
			if n < def.mins[i] || n > MaxPeriod {
				return Spec{}, fmt.Errorf("analysis: spec %q: parameter %d is %d, want %d to %d", s, i+1, n, def.mins[i], MaxPeriod)
			}
			params[i] = float64(n)
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Spec{}, fmt.Errorf("analysis: spec %q: parameter %d (%q) is not a finite non-negative number", s, i+1, f)
		}
		params[i] = v
	}
	if name == "bbands" && len(fields) == 2 {
		params[2] = params[1]
	}
	if name == "macd" && params[0] >= params[1] {
		return Spec{}, fmt.Errorf("analysis: spec %q: macd fast period %v must be below slow period %v", s, params[0], params[1])
	}
	return Spec{Name: name, Params: params}, nil
}

// String returns the canonical form of the spec, which ParseSpec accepts.
func (s Spec) String() string {
	if s.Session {
		return "vwap:session"
	}
	p := s.paramStrings()
	if len(p) == 0 {
		return s.Name
	}
	return s.Name + ":" + strings.Join(p, ",")
}

func (s Spec) paramStrings() []string {
	params := s.Params
	if s.Name == "bbands" && len(params) == 3 && params[1] == params[2] {
		params = params[:2]
	}
	out := make([]string, len(params))
	for i, v := range params {
		out[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return out
}

// Columns returns the output column names, "<name>[_<output>]_<params joined by _>":
// e.g. sma_20, macd_signal_12_26_9, bbands_upper_20_2, obv, vwap_session.
func (s Spec) Columns() []string {
	suffix := ""
	if s.Session {
		suffix = "_session"
	} else if p := s.paramStrings(); len(p) > 0 {
		suffix = "_" + strings.Join(p, "_")
	}
	def := indicators[s.Name]
	if def.outputs == nil {
		return []string{s.Name + suffix}
	}
	cols := make([]string, len(def.outputs))
	for i, o := range def.outputs {
		if o == "" {
			cols[i] = s.Name + suffix
		} else {
			cols[i] = s.Name + "_" + o + suffix
		}
	}
	return cols
}

func (s Spec) period(i int) int { return int(s.Params[i]) }

// Lookback returns how many leading bars have no value (TA-Lib's lookback).
func (s Spec) Lookback() int {
	switch s.Name {
	case "sma", "ema", "wma", "bbands":
		return s.period(0) - 1
	case "rsi", "atr":
		return s.period(0)
	case "macd":
		return s.period(1) + s.period(2) - 2
	case "stoch":
		return s.period(0) + s.period(1) + s.period(2) - 3
	case "adx":
		return 2*s.period(0) - 1
	case "vwap":
		if s.Session {
			return 0
		}
		return s.period(0) - 1
	}
	return 0
}

func (s Spec) validate() error {
	if s.Session && s.Name == "vwap" {
		return nil
	}
	p, err := ParseSpec(s.String())
	if err != nil {
		return err
	}
	if p.Name != s.Name || len(p.Params) != len(s.Params) {
		return fmt.Errorf("analysis: invalid spec %q", s.String())
	}
	for i := range p.Params {
		if p.Params[i] != s.Params[i] {
			return fmt.Errorf("analysis: invalid spec %q", s.String())
		}
	}
	return nil
}

// Compute evaluates the indicator over bars in batch, returning one slice per column
// (in Columns order), each with one value per bar and NaN where the value is undefined.
// It returns an error if the spec was not made by ParseSpec.
func (s Spec) Compute(b Bars) ([][]float64, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	switch s.Name {
	case "sma":
		return [][]float64{SMA(b.Close, s.period(0))}, nil
	case "ema":
		return [][]float64{EMA(b.Close, s.period(0))}, nil
	case "wma":
		return [][]float64{WMA(b.Close, s.period(0))}, nil
	case "rsi":
		return [][]float64{RSI(b.Close, s.period(0))}, nil
	case "macd":
		m, sig, h := MACD(b.Close, s.period(0), s.period(1), s.period(2))
		return [][]float64{m, sig, h}, nil
	case "bbands":
		u, m, l := BBands(b.Close, s.period(0), s.Params[1], s.Params[2])
		return [][]float64{u, m, l}, nil
	case "atr":
		return [][]float64{ATR(b.High, b.Low, b.Close, s.period(0))}, nil
	case "stoch":
		k, d := Stoch(b.High, b.Low, b.Close, s.period(0), s.period(1), s.period(2))
		return [][]float64{k, d}, nil
	case "obv":
		return [][]float64{OBV(b.Close, b.Volume)}, nil
	case "adx":
		return [][]float64{ADX(b.High, b.Low, b.Close, s.period(0))}, nil
	case "vwap":
		if s.Session {
			return [][]float64{SessionVWAP(b.Time, b.High, b.Low, b.Close, b.Volume)}, nil
		}
		return [][]float64{VWAP(b.High, b.Low, b.Close, b.Volume, s.period(0))}, nil
	}
	return nil, fmt.Errorf("analysis: invalid spec %q", s.String())
}

// Stream evaluates one indicator bar by bar in O(1) time per bar (amortised). A Stream
// marshals to JSON as {"spec":"macd:12,26,9","state":{...}} and unmarshals from it, so
// a worker can save it and resume: feeding the remaining bars to the restored Stream
// gives exactly (bit for bit) what Compute gives over the whole series.
type Stream struct {
	spec  Spec
	state validator
}

type validator interface{ validate() error }

// NewStream returns a Stream for spec, before any bar. It returns an error if the spec
// was not made by ParseSpec.
func NewStream(spec Spec) (*Stream, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &Stream{spec: spec, state: newState(spec)}, nil
}

func newState(s Spec) validator {
	switch s.Name {
	case "sma":
		return NewSMAState(s.period(0))
	case "ema":
		return NewEMAState(s.period(0))
	case "wma":
		return NewWMAState(s.period(0))
	case "rsi":
		return NewRSIState(s.period(0))
	case "macd":
		return NewMACDState(s.period(0), s.period(1), s.period(2))
	case "bbands":
		return NewBBandsState(s.period(0), s.Params[1], s.Params[2])
	case "atr":
		return NewATRState(s.period(0))
	case "stoch":
		return NewStochState(s.period(0), s.period(1), s.period(2))
	case "obv":
		return &OBVState{}
	case "adx":
		return NewADXState(s.period(0))
	case "vwap":
		if s.Session {
			return &SessionVWAPState{}
		}
		return NewVWAPState(s.period(0))
	}
	panic("analysis: unreachable: spec " + s.String())
}

// Spec returns the stream's indicator spec.
func (st *Stream) Spec() Spec { return st.spec }

// Update adds the next bar and returns one value per column (Columns order), NaN where
// undefined. Bars must come in time order and satisfy the checks of ReadBarsCSV.
func (st *Stream) Update(b Bar) []float64 {
	switch s := st.state.(type) {
	case *SMAState:
		return []float64{s.Update(b.Close)}
	case *EMAState:
		return []float64{s.Update(b.Close)}
	case *WMAState:
		return []float64{s.Update(b.Close)}
	case *RSIState:
		return []float64{s.Update(b.Close)}
	case *MACDState:
		m, sig, h := s.Update(b.Close)
		return []float64{m, sig, h}
	case *BBandsState:
		u, m, l := s.Update(b.Close)
		return []float64{u, m, l}
	case *ATRState:
		return []float64{s.Update(b.High, b.Low, b.Close)}
	case *StochState:
		k, d := s.Update(b.High, b.Low, b.Close)
		return []float64{k, d}
	case *OBVState:
		return []float64{s.Update(b.Close, b.Volume)}
	case *ADXState:
		return []float64{s.Update(b.High, b.Low, b.Close)}
	case *VWAPState:
		return []float64{s.Update(b.High, b.Low, b.Close, b.Volume)}
	case *SessionVWAPState:
		return []float64{s.Update(b.Time, b.High, b.Low, b.Close, b.Volume)}
	}
	panic("analysis: Stream used without NewStream")
}

type streamJSON struct {
	Spec  string          `json:"spec"`
	State json.RawMessage `json:"state"`
}

// MarshalJSON encodes the spec and the state.
func (st *Stream) MarshalJSON() ([]byte, error) {
	state, err := json.Marshal(st.state)
	if err != nil {
		return nil, fmt.Errorf("analysis: marshal %s state: %w", st.spec, err)
	}
	return json.Marshal(streamJSON{Spec: st.spec.String(), State: state})
}

// UnmarshalJSON restores a Stream saved by MarshalJSON. It returns an error if the spec
// does not parse or the state is inconsistent with it.
func (st *Stream) UnmarshalJSON(data []byte) error {
	var raw streamJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("analysis: decode stream: %w", err)
	}
	spec, err := ParseSpec(raw.Spec)
	if err != nil {
		return err
	}
	fresh := newState(spec)
	state := newState(spec)
	if err := json.Unmarshal(raw.State, state); err != nil {
		return fmt.Errorf("analysis: decode %s state: %w", spec, err)
	}
	if err := state.validate(); err != nil {
		return fmt.Errorf("analysis: decode %s state: %w", spec, err)
	}
	if !sameShape(fresh, state) {
		return fmt.Errorf("analysis: decode %s state: parameters differ from the spec", spec)
	}
	st.spec, st.state = spec, state
	return nil
}

// sameShape reports whether a decoded state has the parameters of a fresh one.
func sameShape(fresh, got validator) bool {
	switch f := fresh.(type) {
	case *SMAState:
		return f.Window.Period == got.(*SMAState).Window.Period
	case *EMAState:
		return f.Period == got.(*EMAState).Period
	case *WMAState:
		return f.Window.Period == got.(*WMAState).Window.Period
	case *RSIState:
		return f.Period == got.(*RSIState).Period
	case *MACDState:
		g := got.(*MACDState)
		return f.Fast.Period == g.Fast.Period && f.Slow.Period == g.Slow.Period && f.Signal.Period == g.Signal.Period
	case *BBandsState:
		g := got.(*BBandsState)
		return f.Window.Period == g.Window.Period && f.DevUp == g.DevUp && f.DevDown == g.DevDown
	case *ATRState:
		return f.Period == got.(*ATRState).Period
	case *StochState:
		g := got.(*StochState)
		return f.FastK == g.FastK && f.K.Window.Period == g.K.Window.Period && f.D.Window.Period == g.D.Window.Period
	case *ADXState:
		return f.Period == got.(*ADXState).Period
	case *VWAPState:
		return f.V.Period == got.(*VWAPState).V.Period
	}
	return true
}
