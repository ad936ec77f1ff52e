package market

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// VWAPPlaces is the number of decimal places VWAP is rounded to (half up).
const VWAPPlaces = 18

// Candle is an OHLCV bar over [OpenTime, OpenTime+Interval), bucketed by exchange trade
// time and aligned to the Unix epoch.
type Candle struct {
	Exchange Exchange
	Symbol   Symbol
	Interval Interval
	OpenTime time.Time

	Open, High, Low, Close decimal.Decimal
	// Volume is Σ qty; QuoteVolume is Σ price·qty, both exact.
	Volume, QuoteVolume decimal.Decimal
	// Trades counts the trades in the bar; 0 for a bar carried flat over a quiet
	// interval.
	Trades int64
	// Closed is true once no more trades will be added.
	Closed bool
	// Source says where the candle came from when not from tickstash's own trade
	// aggregation: "rest" (an exchange's REST history, see package history), "repair"
	// (recomputed after a gap). Empty for live candles; the record omits it then.
	Source string
}

// NewCandle opens the candle of interval iv that contains t's time, with t as its first
// trade. It does not validate t.
func NewCandle(t *Trade, iv Interval) Candle { return NewCandleNotional(t, iv, t.Price.Mul(t.Qty)) }

// NewCandleNotional is NewCandle with the trade's price·qty computed by the caller.
func NewCandleNotional(t *Trade, iv Interval, notional decimal.Decimal) Candle {
	return Candle{
		Exchange: t.Exchange, Symbol: t.Symbol, Interval: iv, OpenTime: iv.Align(t.Time),
		Open: t.Price, High: t.Price, Low: t.Price, Close: t.Price,
		Volume: t.Qty, QuoteVolume: notional, Trades: 1,
	}
}

// FlatCandle returns the candle of a quiet interval opening at open: open, high, low and
// close equal the previous close, with no volume and no trades.
func FlatCandle(prev *Candle, open time.Time) Candle {
	return Candle{
		Exchange: prev.Exchange, Symbol: prev.Symbol, Interval: prev.Interval, OpenTime: open,
		Open: prev.Close, High: prev.Close, Low: prev.Close, Close: prev.Close,
	}
}

// Add folds a trade of the candle's bucket into it. The caller checks the bucket.
func (c *Candle) Add(t *Trade) { c.AddNotional(t, t.Price.Mul(t.Qty)) }

// AddNotional is Add with the trade's price·qty computed by the caller, which saves the
// multiplication when one trade feeds candles of several intervals.
func (c *Candle) AddNotional(t *Trade, notional decimal.Decimal) {
	c.AddPrice(t)
	c.Volume = c.Volume.Add(t.Qty)
	c.QuoteVolume = c.QuoteVolume.Add(notional)
}

// AddPrice is Add without the volumes: high, low, close and the trade count. A caller
// that keeps Volume and QuoteVolume's running sums itself (the ingest aggregator, which
// adds them without allocating) uses it.
func (c *Candle) AddPrice(t *Trade) {
	if t.Price.GreaterThan(c.High) {
		c.High = t.Price
	}
	if t.Price.LessThan(c.Low) {
		c.Low = t.Price
	}
	c.Close = t.Price
	c.Trades++
}

// CloseTime returns the exclusive end of the candle, OpenTime + Interval.
func (c *Candle) CloseTime() time.Time { return c.OpenTime.Add(c.Interval.Duration()) }

// VWAP returns QuoteVolume / Volume rounded to VWAPPlaces, or Close when the candle has
// no volume (a flat candle) or no quote volume (a venue that does not report it, such as
// Coinbase's REST candles: a candle built from trades with volume always has a positive
// quote volume), so that charts never see a zero price.
func (c *Candle) VWAP() decimal.Decimal {
	if c.Volume.Sign() == 0 || c.QuoteVolume.Sign() == 0 {
		return c.Close
	}
	return c.QuoteVolume.DivRound(c.Volume, VWAPPlaces)
}

// ErrCandleRange is wrapped by Candle.Validate when the prices are inconsistent.
var ErrCandleRange = errors.New("market: candle prices out of range")

// Validate checks identity, interval, alignment and that low ≤ open, close ≤ high with
// positive prices and non-negative volumes.
func (c *Candle) Validate() error {
	if err := c.Exchange.Validate(); err != nil {
		return err
	}
	if err := c.Symbol.Validate(); err != nil {
		return err
	}
	if err := c.Interval.Validate(); err != nil {
		return err
	}
	if c.OpenTime.IsZero() {
		return ErrZeroTime
	}
	if !c.Interval.Align(c.OpenTime).Equal(c.OpenTime) {
		return fmt.Errorf("market: candle open time %s is not aligned to %s", FormatTime(c.OpenTime), c.Interval)
	}
	if c.Low.Sign() <= 0 {
		return fmt.Errorf("%w: low %s", ErrNonPositivePrice, c.Low)
	}
	if c.High.LessThan(c.Low) || c.Open.LessThan(c.Low) || c.Close.LessThan(c.Low) ||
		c.Open.GreaterThan(c.High) || c.Close.GreaterThan(c.High) {
		return fmt.Errorf("%w: open %s high %s low %s close %s", ErrCandleRange, c.Open, c.High, c.Low, c.Close)
	}
	if c.Volume.Sign() < 0 || c.QuoteVolume.Sign() < 0 || c.Trades < 0 {
		return fmt.Errorf("%w: volume %s quote volume %s trades %d", ErrNegative, c.Volume, c.QuoteVolume, c.Trades)
	}
	return nil
}

type candleJSON struct {
	Type        string          `json:"type"`
	Exchange    Exchange        `json:"exchange"`
	Symbol      Symbol          `json:"symbol"`
	Interval    Interval        `json:"interval"`
	OpenTime    string          `json:"open_time"`
	CloseTime   string          `json:"close_time"`
	Open        decimal.Decimal `json:"open"`
	High        decimal.Decimal `json:"high"`
	Low         decimal.Decimal `json:"low"`
	Close       decimal.Decimal `json:"close"`
	Volume      decimal.Decimal `json:"volume"`
	QuoteVolume decimal.Decimal `json:"quote_volume"`
	Trades      int64           `json:"trades"`
	VWAP        decimal.Decimal `json:"vwap"`
	Closed      bool            `json:"closed"`
	Source      string          `json:"src,omitempty"`
}

// MarshalJSON writes the candle record: type, exchange, symbol, interval, open_time,
// close_time (exclusive), open, high, low, close, volume, quote_volume, trades, vwap and
// closed, and src when Source is set.
func (c Candle) MarshalJSON() ([]byte, error) {
	return json.Marshal(candleJSON{
		Type: "candle", Exchange: c.Exchange, Symbol: c.Symbol, Interval: c.Interval,
		OpenTime: FormatTime(c.OpenTime), CloseTime: FormatTime(c.CloseTime()),
		Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
		Volume: c.Volume, QuoteVolume: c.QuoteVolume, Trades: c.Trades, VWAP: c.VWAP(),
		Closed: c.Closed, Source: c.Source,
	})
}

// UnmarshalJSON reads a candle record and validates it. close_time and vwap are derived
// and ignored on input.
func (c *Candle) UnmarshalJSON(b []byte) error {
	var r candleJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("market: candle: %w", err)
	}
	if r.Type != "" && r.Type != "candle" {
		return fmt.Errorf("market: candle: type is %q, want \"candle\"", r.Type)
	}
	open, err := time.Parse(time.RFC3339Nano, r.OpenTime)
	if err != nil {
		return fmt.Errorf("market: candle open_time %q: want RFC 3339", r.OpenTime)
	}
	v := Candle{
		Exchange: r.Exchange, Symbol: r.Symbol, Interval: r.Interval, OpenTime: open.UTC(),
		Open: r.Open, High: r.High, Low: r.Low, Close: r.Close,
		Volume: r.Volume, QuoteVolume: r.QuoteVolume, Trades: r.Trades, Closed: r.Closed,
		Source: r.Source,
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*c = v
	return nil
}
