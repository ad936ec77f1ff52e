package signals

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
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

// DecodeUpdate decodes an analysis update (the stage contract pipeline.AnalysisUpdate,
// decoded and checked by pipeline.DecodeAnalysisUpdate) into the rules' input. It returns
// an error wrapping ErrBadUpdate if the JSON is malformed, the market or interval
// invalid, the candle time missing or not aligned, or the close negative; a zero or
// absent close leaves Update.Close zero.
func DecodeUpdate(data []byte) (Update, error) {
	r, err := pipeline.DecodeAnalysisUpdate(data)
	if err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	return Update{Exchange: r.Exchange, Symbol: r.Symbol, Interval: r.Interval, CandleTime: r.CandleTime,
		Close: r.Close, Values: r.Values}, nil
}
