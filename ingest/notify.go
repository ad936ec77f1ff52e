package ingest

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/market"
)

// CandleSubject returns the core NATS subject on which closed candles are announced:
// ts.candles.<exchange>.<symbol>.<interval>, e.g. ts.candles.binance.BTC-USDT.1m.
func CandleSubject(c *market.Candle) string {
	return "ts.candles." + string(c.Exchange) + "." + string(c.Symbol) + "." + c.Interval.String()
}

// NATSNotifier is a CandleSink that publishes each closed candle, as its JSON record, on
// core NATS (fire and forget: live updates, not a durable log).
type NATSNotifier struct {
	nc *nats.Conn
}

var _ CandleSink = (*NATSNotifier)(nil)

// NewNATSNotifier returns a notifier publishing on nc.
func NewNATSNotifier(nc *nats.Conn) *NATSNotifier { return &NATSNotifier{nc: nc} }

// CandleClosed publishes c on CandleSubject(c). It fails only when the connection is
// closed or its reconnect buffer is full.
func (n *NATSNotifier) CandleClosed(_ context.Context, c market.Candle) error {
	b, err := c.MarshalJSON()
	if err != nil {
		return fmt.Errorf("ingest: encode candle: %w", err)
	}
	if err := n.nc.Publish(CandleSubject(&c), b); err != nil {
		return fmt.Errorf("ingest: publish candle on %s: %w", CandleSubject(&c), err)
	}
	return nil
}

// MultiSink fans a closed candle out to several sinks, returning the first error after
// trying them all.
type MultiSink []CandleSink

// CandleClosed calls every sink.
func (m MultiSink) CandleClosed(ctx context.Context, c market.Candle) error {
	var first error
	for _, s := range m {
		if err := s.CandleClosed(ctx, c); err != nil && first == nil {
			first = err
		}
	}
	return first
}
