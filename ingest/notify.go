package ingest

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// NATSNotifier is a CandleSink that announces each closed candle on core NATS, as the
// stage contract pipeline defines it (subject pipeline.CandleClosedSubject, the candle's
// JSON record): fire and forget, live updates, not a durable log.
type NATSNotifier struct {
	nc *nats.Conn
}

var _ CandleSink = (*NATSNotifier)(nil)

// NewNATSNotifier returns a notifier publishing on nc.
func NewNATSNotifier(nc *nats.Conn) *NATSNotifier { return &NATSNotifier{nc: nc} }

// CandleClosed publishes c on pipeline.CandleClosedSubject. It fails only when the
// connection is closed or its reconnect buffer is full.
func (n *NATSNotifier) CandleClosed(_ context.Context, c market.Candle) error {
	b, err := pipeline.EncodeCandleClosed(&c)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	subject := pipeline.CandleClosedSubject(c.Exchange, c.Symbol, c.Interval)
	if err := n.nc.Publish(subject, b); err != nil {
		return fmt.Errorf("ingest: publish candle on %s: %w", subject, err)
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
