package ingest

import (
	"context"
	"time"

	"github.com/tickstash/tickstash/market"
)

// Source produces market events: an exchange connector, a capture replay, the synthetic
// market.
type Source interface {
	// Name identifies the source in logs and metrics, e.g. "synthetic" or "binance".
	Name() string
	// Run sends events to out until ctx is done, returning nil then, or until a finite
	// source (a capture file) is exhausted, also returning nil. Any other error means
	// the source cannot go on. Run must not close out.
	Run(ctx context.Context, out chan<- Event) error
}

// EventKind says which field of an Event is set.
type EventKind uint8

// The kinds of events a source emits.
const (
	KindTrade  EventKind = iota + 1 // Event.Trade
	KindQuote                       // Event.Quote
	KindCandle                      // Event.Candle: a candle from the exchange's own kline feed
	KindGap                         // Event.Gap: trades were missed
)

// Event is one normalized message from a source. Only the field named by Kind is set;
// events are passed by value so that a busy feed does not allocate one per message.
type Event struct {
	Kind   EventKind
	Trade  market.Trade
	Quote  market.Quote
	Candle market.Candle
	Gap    Gap
}

// Gap reports trades that a source knows it missed, from a jump in the exchange's trade
// ids (e.g. across a reconnect).
type Gap struct {
	Exchange market.Exchange
	Symbol   market.Symbol
	// FromID and ToID bound the missing ids, both inclusive.
	FromID, ToID string
	// Missing is how many trades are missing, when the ids are numeric.
	Missing int64
	Time    time.Time
}
