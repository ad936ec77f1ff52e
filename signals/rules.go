package signals

import (
	"math"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// RuleKind is what a Rule watches.
type RuleKind uint8

// The rule kinds.
const (
	// RSICross: buy when RSI crosses up through Lower, sell when it crosses down through
	// Upper.
	RSICross RuleKind = iota + 1
	// MACDCross: buy when the MACD line crosses above its signal line, sell below.
	MACDCross
	// BBandsBreak: buy when the close moves below the lower Bollinger Band (from on or
	// above it), sell when it moves above the upper band.
	BBandsBreak
	// MACross: buy when the fast moving average crosses above the slow one, sell below.
	MACross
)

// String returns the rule type as written in strategy files.
func (k RuleKind) String() string {
	switch k {
	case RSICross:
		return "rsi"
	case MACDCross:
		return "macd"
	case BBandsBreak:
		return "bbands"
	case MACross:
		return "sma_cross"
	}
	return "unknown"
}

// Rule is one parsed rule of a strategy. Only the fields of its Kind are used.
type Rule struct {
	Kind RuleKind
	// Period of RSI and Bollinger Bands.
	Period int
	// Lower and Upper are the RSI thresholds.
	Lower, Upper float64
	// Fast, Slow and Signal are the MACD periods; Fast and Slow those of MACross.
	Fast, Slow, Signal int
	// Dev is the Bollinger Bands' width in standard deviations.
	Dev float64
	// MA is the moving average of MACross: sma, ema or wma.
	MA string
	// Weight is the rule's vote; the signal's strength is the share of the strategy's
	// total weight that voted for its side.
	Weight float64
	// Line is where the rule starts in its file.
	Line int
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Columns returns the analysis columns (indicator.Spec.Columns names) the rule reads.
func (r *Rule) Columns() []string {
	switch r.Kind {
	case RSICross:
		return []string{"rsi_" + itoa(r.Period)}
	case MACDCross:
		p := itoa(r.Fast) + "_" + itoa(r.Slow) + "_" + itoa(r.Signal)
		return []string{"macd_" + p, "macd_signal_" + p}
	case BBandsBreak:
		p := itoa(r.Period) + "_" + ftoa(r.Dev)
		return []string{"bbands_upper_" + p, "bbands_lower_" + p}
	case MACross:
		return []string{r.MA + "_" + itoa(r.Fast), r.MA + "_" + itoa(r.Slow)}
	}
	return nil
}

// Indicators returns the indicator specs (indicator.ParseSpec syntax, as given to
// --indicators) that compute the rule's Columns.
func (r *Rule) Indicators() []string {
	switch r.Kind {
	case RSICross:
		return []string{"rsi:" + itoa(r.Period)}
	case MACDCross:
		return []string{"macd:" + itoa(r.Fast) + "," + itoa(r.Slow) + "," + itoa(r.Signal)}
	case BBandsBreak:
		return []string{"bbands:" + itoa(r.Period) + "," + ftoa(r.Dev)}
	case MACross:
		return []string{r.MA + ":" + itoa(r.Fast), r.MA + ":" + itoa(r.Slow)}
	}
	return nil
}

// Name describes the rule in a signal's Rules list, e.g. "rsi_14<30|>70".
func (r *Rule) Name() string {
	switch r.Kind {
	case RSICross:
		return "rsi_" + itoa(r.Period) + "<" + ftoa(r.Lower) + "|>" + ftoa(r.Upper)
	case MACDCross:
		return "macd_" + itoa(r.Fast) + "_" + itoa(r.Slow) + "_" + itoa(r.Signal) + " x signal"
	case BBandsBreak:
		return "close x bbands_" + itoa(r.Period) + "_" + ftoa(r.Dev)
	case MACross:
		return r.MA + "_" + itoa(r.Fast) + " x " + r.MA + "_" + itoa(r.Slow)
	}
	return "unknown"
}

// Point is what a strategy remembers of one analysis update of a market and interval:
// the candle, its close and the values of the strategy's columns.
type Point struct {
	CandleTime time.Time          `json:"t"`
	Close      decimal.Decimal    `json:"c"`
	Values     map[string]float64 `json:"v"`
}

// vote reports the side the rule calls from prev to cur, or SideUnknown. A value missing
// at either point means no call.
func (r *Rule) vote(prev, cur *Point) market.Side {
	cols := r.Columns()
	var p, c [2]float64
	for i, col := range cols {
		pv, ok1 := prev.Values[col]
		cv, ok2 := cur.Values[col]
		if !ok1 || !ok2 || !finite(pv) || !finite(cv) {
			return market.SideUnknown
		}
		p[i], c[i] = pv, cv
	}
	switch r.Kind {
	case RSICross:
		switch {
		case p[0] < r.Lower && c[0] >= r.Lower:
			return market.Buy
		case p[0] > r.Upper && c[0] <= r.Upper:
			return market.Sell
		}
	case MACDCross, MACross:
		switch {
		case p[0] <= p[1] && c[0] > c[1]:
			return market.Buy
		case p[0] >= p[1] && c[0] < c[1]:
			return market.Sell
		}
	case BBandsBreak:
		if prev.Close.Sign() <= 0 || cur.Close.Sign() <= 0 {
			return market.SideUnknown
		}
		pc, cc := prev.Close.InexactFloat64(), cur.Close.InexactFloat64()
		// p/c[0] upper, [1] lower
		switch {
		case pc >= p[1] && cc < c[1]:
			return market.Buy
		case pc <= p[0] && cc > c[0]:
			return market.Sell
		}
	}
	return market.SideUnknown
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Evaluate runs the strategy's rules from prev to cur (the previous and current update of
// one market and interval) and returns the signal they raise, if any. Each rule that
// fires votes its Weight for a side; the side with the larger total wins, and Strength
// is (winning − losing weight) ÷ all the strategy's weight. A tie, no vote, a missing
// prev, or a cur that is not after prev raises nothing. The signal is not validated; at
// is its Time.
func (s *Strategy) Evaluate(ex market.Exchange, sym market.Symbol, iv market.Interval, prev, cur *Point, at time.Time) (market.Signal, bool) {
	if prev == nil || cur == nil || !cur.CandleTime.After(prev.CandleTime) {
		return market.Signal{}, false
	}
	var total, buy, sell float64
	fired := make([]market.Side, len(s.Rules))
	for i := range s.Rules {
		r := &s.Rules[i]
		total += r.Weight
		switch fired[i] = r.vote(prev, cur); fired[i] {
		case market.Buy:
			buy += r.Weight
		case market.Sell:
			sell += r.Weight
		}
	}
	if buy == sell {
		return market.Signal{}, false
	}
	side, net := market.Buy, buy-sell
	if sell > buy {
		side, net = market.Sell, sell-buy
	}
	sig := market.Signal{
		ID:       market.SignalID(s.Name, ex, sym, iv, cur.CandleTime),
		Schema:   market.SignalSchema,
		Strategy: s.Name, Exchange: ex, Symbol: sym, Interval: iv,
		CandleTime: cur.CandleTime, Side: side, Price: cur.Close,
		Strength:   math.Min(1, net/total),
		Time:       at.UTC(),
		Indicators: map[string]float64{},
	}
	for i := range s.Rules {
		if fired[i] != side {
			continue
		}
		r := &s.Rules[i]
		sig.Rules = append(sig.Rules, r.Name())
		for _, col := range r.Columns() {
			sig.Indicators[col] = cur.Values[col]
		}
	}
	return sig, true
}
