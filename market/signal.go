package market

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// SignalSchema is the version of the Signal record written by this code. Readers accept
// records of this version and reject newer ones.
const SignalSchema = 1

// ErrInvalidSignal is wrapped by Signal.Validate for every rule a signal breaks.
var ErrInvalidSignal = errors.New("market: invalid signal")

// Signal is a trading signal: a strategy's call to buy or sell a market, raised by the
// analysis of the candle of Interval opening at CandleTime. Its ID must be the
// deterministic SignalID of those five fields.
type Signal struct {
	// ID is SignalID(Strategy, Exchange, Symbol, Interval, CandleTime): the same input
	// always gives the same ID, which makes republishing idempotent.
	ID       string
	Schema   int
	Strategy string
	Exchange Exchange
	Symbol   Symbol
	Interval Interval
	// CandleTime is the open time of the candle whose analysis raised the signal.
	CandleTime time.Time
	// Side is Buy or Sell.
	Side Side
	// Price is the close of that candle.
	Price decimal.Decimal
	// Strength is in (0, 1]: the share of the strategy's rule weight that agreed.
	Strength float64
	// Time is when the signal was generated.
	Time time.Time
	// Indicators holds the indicator values (analysis column names) that triggered it.
	Indicators map[string]float64
	// Rules names the rules that fired, in the strategy's order.
	Rules []string
}

// SignalID returns the deterministic id "<strategy>:<exchange>:<symbol>:<interval>:<unix
// ms of the candle open time>".
func SignalID(strategy string, ex Exchange, sym Symbol, iv Interval, candle time.Time) string {
	return strategy + ":" + string(ex) + ":" + string(sym) + ":" + iv.String() + ":" + strconv.FormatInt(candle.UnixMilli(), 10)
}

// ValidateStrategyName reports whether name can name a strategy: 1 to 64 bytes of
// [a-z0-9_-]. The name is a NATS subject token and part of Redis keys.
func ValidateStrategyName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: strategy name %q: want 1 to 64 characters", ErrInvalidSignal, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("%w: strategy name %q: only a-z, 0-9, '-' and '_' are allowed", ErrInvalidSignal, name)
		}
	}
	return nil
}

// Validate checks the schema version, the identity (strategy, exchange, symbol, interval,
// aligned candle time), that ID is the deterministic one, a Buy or Sell side, a positive
// price, a strength in (0, 1], a generation time and finite indicator values. Errors
// wrap ErrInvalidSignal.
func (s *Signal) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSignal, fmt.Sprintf(format, args...))
	}
	if s.Schema != SignalSchema {
		return bad("schema %d, want %d", s.Schema, SignalSchema)
	}
	if err := ValidateStrategyName(s.Strategy); err != nil {
		return err
	}
	if err := s.Exchange.Validate(); err != nil {
		return bad("%v", err)
	}
	if err := s.Symbol.Validate(); err != nil {
		return bad("%v", err)
	}
	if err := s.Interval.Validate(); err != nil {
		return bad("%v", err)
	}
	if s.CandleTime.IsZero() || !s.Interval.Align(s.CandleTime).Equal(s.CandleTime) {
		return bad("candle time %s is not the open time of a %s candle", FormatTime(s.CandleTime), s.Interval)
	}
	if want := SignalID(s.Strategy, s.Exchange, s.Symbol, s.Interval, s.CandleTime); s.ID != want {
		return bad("id %q, want %q", s.ID, want)
	}
	if s.Side != Buy && s.Side != Sell {
		return bad("side %s, want buy or sell", s.Side)
	}
	if s.Price.Sign() <= 0 {
		return bad("price %s is not positive", s.Price)
	}
	if !(s.Strength > 0 && s.Strength <= 1) {
		return bad("strength %v outside (0, 1]", s.Strength)
	}
	if s.Time.IsZero() {
		return bad("time is missing")
	}
	for k, v := range s.Indicators {
		if k == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			return bad("indicator %q = %v", k, v)
		}
	}
	return nil
}

type signalJSON struct {
	Type       string             `json:"type"`
	Schema     int                `json:"schema"`
	ID         string             `json:"id"`
	Strategy   string             `json:"strategy"`
	Exchange   Exchange           `json:"exchange"`
	Symbol     Symbol             `json:"symbol"`
	Interval   string             `json:"interval"`
	CandleTime string             `json:"candle_time"`
	Side       string             `json:"side"`
	Price      decimal.Decimal    `json:"price"`
	Strength   float64            `json:"strength"`
	Time       string             `json:"time"`
	Indicators map[string]float64 `json:"indicators"`
	Rules      []string           `json:"rules,omitempty"`
}

// MarshalJSON writes the signal record:
//
//	{"type":"signal","schema":1,"id":"rsi:binance:BTC-USDT:1m:1767225600000",
//	 "strategy":"rsi","exchange":"binance","symbol":"BTC-USDT","interval":"1m",
//	 "candle_time":"2026-01-01T00:00:00Z","side":"buy","price":"95000.1",
//	 "strength":1,"time":"2026-01-01T00:01:02.5Z","indicators":{"rsi_14":30.5},
//	 "rules":["rsi_cross"]}
//
// It does not validate.
func (s Signal) MarshalJSON() ([]byte, error) {
	return json.Marshal(signalJSON{
		Type: "signal", Schema: s.Schema, ID: s.ID, Strategy: s.Strategy,
		Exchange: s.Exchange, Symbol: s.Symbol, Interval: s.Interval.String(),
		CandleTime: FormatTime(s.CandleTime), Side: s.Side.String(), Price: s.Price,
		Strength: s.Strength, Time: FormatTime(s.Time), Indicators: s.Indicators, Rules: s.Rules,
	})
}

// UnmarshalJSON reads a signal record and validates it; errors from validation wrap
// ErrInvalidSignal.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var r signalJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("market: signal: %w", err)
	}
	if r.Type != "" && r.Type != "signal" {
		return fmt.Errorf("market: signal: type is %q, want \"signal\"", r.Type)
	}
	iv, err := ParseInterval(r.Interval)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignal, err)
	}
	side, err := ParseSide(strings.ToLower(r.Side))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignal, err)
	}
	ct, err := time.Parse(time.RFC3339Nano, r.CandleTime)
	if err != nil {
		return fmt.Errorf("%w: candle_time %q: want RFC 3339", ErrInvalidSignal, r.CandleTime)
	}
	at, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return fmt.Errorf("%w: time %q: want RFC 3339", ErrInvalidSignal, r.Time)
	}
	v := Signal{
		ID: r.ID, Schema: r.Schema, Strategy: r.Strategy, Exchange: r.Exchange, Symbol: r.Symbol,
		Interval: iv, CandleTime: ct.UTC(), Side: side, Price: r.Price, Strength: r.Strength,
		Time: at.UTC(), Indicators: r.Indicators, Rules: r.Rules,
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*s = v
	return nil
}
