package pipeline

import (
	"errors"
	"fmt"

	"github.com/tickstash/tickstash/market"
)

// CandlePrefix starts every candle-closed subject.
const CandlePrefix = "ts.candles"

// ErrBadMessage is wrapped by the Decode functions for a message that does not meet its
// contract.
var ErrBadMessage = errors.New("pipeline: bad message")

// CandleClosedSubject returns the core NATS subject on which a closed candle is announced:
// ts.candles.<exchange>.<symbol>.<interval>, e.g. ts.candles.binance.BTC-USDT.1m.
func CandleClosedSubject(ex market.Exchange, sym market.Symbol, iv market.Interval) string {
	return CandlePrefix + "." + string(ex) + "." + string(sym) + "." + iv.String()
}

// EncodeCandleClosed returns the message body announcing c: its JSON record.
func EncodeCandleClosed(c *market.Candle) ([]byte, error) {
	b, err := c.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("pipeline: encode candle: %w", err)
	}
	return b, nil
}

// DecodeCandleClosed decodes a candle-closed message. It returns an error wrapping
// ErrBadMessage if the JSON is malformed or the candle is invalid or not closed.
func DecodeCandleClosed(data []byte) (market.Candle, error) {
	var c market.Candle
	if err := c.UnmarshalJSON(data); err != nil {
		return market.Candle{}, fmt.Errorf("%w: candle: %v", ErrBadMessage, err)
	}
	if err := c.Validate(); err != nil {
		return market.Candle{}, fmt.Errorf("%w: candle: %v", ErrBadMessage, err)
	}
	if !c.Closed {
		return market.Candle{}, fmt.Errorf("%w: candle %s %s %s at %s is not closed", ErrBadMessage,
			c.Exchange, c.Symbol, c.Interval, market.FormatTime(c.OpenTime))
	}
	return c, nil
}
