package leaderboard

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// CandleReader reads a market's newest candles, oldest first. *cache.MarketStore
// satisfies it.
type CandleReader interface {
	LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error)
}

// MoversConfig configures a MoversFeeder. Every zero value means the documented default.
type MoversConfig struct {
	// Interval of the candles that trigger an update and are summed; others are ignored.
	// 0 means 1h.
	Interval market.Interval
	// Span is the rolling period the change and the volume cover. 0 means 24h.
	Span time.Duration
	// Places is the number of decimal places the change in percent is rounded to
	// (half away from zero). 0 means 8.
	Places int32
}

// MoversFeeder keeps the top-movers boards (BoardGainers, BoardLosers: the price change
// over the span in percent) and the volume board (BoardVolume: the quote volume over the
// span) from closed candles. Members are "exchange:SYMBOL". It implements
// ingest.CandleSink.
type MoversFeeder struct {
	store   *Store
	candles CandleReader
	cfg     MoversConfig
}

// NewMoversFeeder returns a feeder writing to store and reading candles from candles.
func NewMoversFeeder(store *Store, candles CandleReader, cfg MoversConfig) *MoversFeeder {
	if cfg.Interval <= 0 {
		cfg.Interval = market.Interval1h
	}
	if cfg.Span <= 0 {
		cfg.Span = 24 * time.Hour
	}
	if cfg.Places <= 0 {
		cfg.Places = 8
	}
	return &MoversFeeder{store: store, candles: candles, cfg: cfg}
}

// CandleClosed updates the market's lines when c is a closed candle of the configured
// interval: change = (close of c / open of the oldest candle within the span − 1) × 100,
// volume = Σ quote volume of those candles. Forming candles and other intervals are
// ignored. Errors come from reading candles or writing boards.
func (f *MoversFeeder) CandleClosed(ctx context.Context, c market.Candle) error {
	if !c.Closed || c.Interval != f.cfg.Interval {
		return nil
	}
	n := int(f.cfg.Span/f.cfg.Interval.Duration()) + 2 // a forming candle may follow c
	cs, err := f.candles.LastCandles(ctx, c.Exchange, c.Symbol, c.Interval, n)
	if err != nil {
		return fmt.Errorf("leaderboard: movers: %s:%s: %w", c.Exchange, c.Symbol, err)
	}
	from := c.CloseTime().Add(-f.cfg.Span)
	var open decimal.Decimal
	volume := decimal.Zero
	for i := range cs {
		x := &cs[i]
		if x.OpenTime.Before(from) || x.OpenTime.After(c.OpenTime) {
			continue
		}
		if open.IsZero() && !x.Open.IsZero() {
			open = x.Open
		}
		volume = volume.Add(x.QuoteVolume)
	}
	member := string(c.Exchange) + ":" + string(c.Symbol)
	if open.IsZero() { // the candle itself was not stored (yet): use it alone
		open, volume = c.Open, c.QuoteVolume
	}
	if open.IsZero() {
		return nil
	}
	change := c.Close.Sub(open).Mul(decimal.NewFromInt(100)).DivRound(open, f.cfg.Places)
	for _, b := range []string{BoardGainers, BoardLosers} {
		if err := f.store.Set(ctx, b, member, change); err != nil {
			return err
		}
	}
	return f.store.Set(ctx, BoardVolume, member, volume)
}
