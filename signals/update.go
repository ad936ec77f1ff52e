package signals

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// ErrBadUpdate is wrapped by DecodeUpdate for a message that is not an analysis update.
var ErrBadUpdate = errors.New("signals: bad analysis update")

// Update is the rules' input: the analysis of one market and interval at one candle.
type Update struct {
	Exchange market.Exchange
	Symbol   market.Symbol
	Interval market.Interval
	// CandleTime is the open time of the candle the values end at.
	CandleTime time.Time
	// Close is that candle's close; zero when the update did not carry it (the Role then
	// reads it from its CandleReader).
	Close decimal.Decimal
	// Values are the indicator values by analysis column name (rsi_14, macd_12_26_9, ...).
	Values map[string]float64
}

// updateJSON is the analysis result published on ts.analysis.<exchange>.<symbol>.<interval>
// (analysis.Result), of which the rules need these fields. "close" is read when present.
type updateJSON struct {
	Exchange   market.Exchange    `json:"exchange"`
	Symbol     market.Symbol      `json:"symbol"`
	Interval   market.Interval    `json:"interval"`
	CandleTime time.Time          `json:"candle_time"`
	Close      *decimal.Decimal   `json:"close"`
	Values     map[string]float64 `json:"values"`
}

// DecodeUpdate decodes an analysis update (the JSON of analysis.Result). It returns an
// error wrapping ErrBadUpdate if the JSON is malformed, the market or interval invalid,
// the candle time missing or not aligned, or the close present but not positive.
func DecodeUpdate(data []byte) (Update, error) {
	var r updateJSON
	if err := json.Unmarshal(data, &r); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	u := Update{Exchange: r.Exchange, Symbol: r.Symbol, Interval: r.Interval, CandleTime: r.CandleTime.UTC(), Values: r.Values}
	if r.Close != nil {
		if r.Close.Sign() <= 0 {
			return Update{}, fmt.Errorf("%w: close %s is not positive", ErrBadUpdate, r.Close)
		}
		u.Close = *r.Close
	}
	if err := u.Exchange.Validate(); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	if err := u.Symbol.Validate(); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	if err := u.Interval.Validate(); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	if u.CandleTime.IsZero() || !u.Interval.Align(u.CandleTime).Equal(u.CandleTime) {
		return Update{}, fmt.Errorf("%w: candle_time %s is not a %s open time", ErrBadUpdate, market.FormatTime(u.CandleTime), u.Interval)
	}
	return u, nil
}
