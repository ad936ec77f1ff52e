package ingest

import (
	"context"
	"fmt"
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

// EventKind says what an Event carries.
type EventKind uint8

// The kinds of events a source emits.
const (
	KindTrade  EventKind = iota + 1 // Event.Trade
	KindQuote                       // Event.Quote
	KindCandle                      // Event.Candle: a candle from the exchange's own kline feed
	KindGap                         // Event.Gap: trades were missed
)

// String returns "trade", "quote", "candle", "gap" or "unknown", the values of the
// kind label of the ingest metrics.
func (k EventKind) String() string {
	switch k {
	case KindTrade:
		return "trade"
	case KindQuote:
		return "quote"
	case KindCandle:
		return "candle"
	case KindGap:
		return "gap"
	}
	return "unknown"
}

// Event is one normalized message from a source, validated where it entered
// tickstash: an Event can only be built by NewTradeEvent, NewQuoteEvent and
// NewCandleEvent, which validate their record (market's Validate), or by NewGapEvent.
// Everything downstream — the ingester, the aggregator, the store — relies on that
// and validates nothing again.
//
// An Event holds a trade inline and any other record by pointer: trades are the bulk
// of the traffic and cost no allocation, and an event is 160 bytes, not the 560 of
// the four records side by side. The records behind pointers are shared, not
// copied: nobody may modify them after the Event is built. The zero Event carries
// nothing (Kind 0); the ingester drops it as invalid.
type Event struct {
	kind  EventKind
	trade market.Trade // KindTrade
	other any          // *market.Quote, *market.Candle or *Gap for the other kinds
}

// NewTradeEvent returns an Event carrying t, or an error (wrapping market's
// validation errors) when t does not validate.
func NewTradeEvent(t market.Trade) (Event, error) {
	if err := t.Validate(); err != nil {
		return Event{}, fmt.Errorf("ingest: trade %s of %s:%s: %w", t.ID, t.Exchange, t.Symbol, err)
	}
	return Event{kind: KindTrade, trade: t}, nil
}

// NewQuoteEvent returns an Event carrying q, or an error when q does not validate.
func NewQuoteEvent(q market.Quote) (Event, error) {
	if err := q.Validate(); err != nil {
		return Event{}, fmt.Errorf("ingest: quote of %s:%s: %w", q.Exchange, q.Symbol, err)
	}
	return Event{kind: KindQuote, other: &q}, nil
}

// NewCandleEvent returns an Event carrying c, or an error when c does not validate.
func NewCandleEvent(c market.Candle) (Event, error) {
	if err := c.Validate(); err != nil {
		return Event{}, fmt.Errorf("ingest: candle %s %s:%s %s: %w", c.Interval, c.Exchange, c.Symbol, market.FormatTime(c.OpenTime), err)
	}
	return Event{kind: KindCandle, other: &c}, nil
}

// NewGapEvent returns an Event reporting g. A gap is a report, not data: nothing in it
// is stored, so it is not validated.
func NewGapEvent(g Gap) Event { return Event{kind: KindGap, other: &g} }

// Kind says what the event carries; 0 for the zero Event.
func (e *Event) Kind() EventKind { return e.kind }

// Trade returns the event's trade, valid, or nil when it carries none. The pointer is
// into e: read through it while e is alive; don't modify the trade.
func (e *Event) Trade() *market.Trade {
	if e.kind != KindTrade {
		return nil
	}
	return &e.trade
}

// Quote returns the event's quote, valid, or nil when it carries none. Read only.
func (e *Event) Quote() *market.Quote { q, _ := e.other.(*market.Quote); return q }

// Candle returns the event's candle, valid, or nil when it carries none. Read only.
func (e *Event) Candle() *market.Candle { c, _ := e.other.(*market.Candle); return c }

// Gap returns the event's gap report, or nil when it carries none. Read only.
func (e *Event) Gap() *Gap { g, _ := e.other.(*Gap); return g }

// Draft is an event as a decoder builds it, before validation: Kind names the one
// field that is set. Decoders append drafts to a reused slice (no allocation per
// message); the stream they feed turns each into an Event with Draft.Event, which is
// where validation happens.
type Draft struct {
	Kind   EventKind
	Trade  market.Trade
	Quote  market.Quote
	Candle market.Candle
	Gap    Gap
}

// Event validates the draft's record and returns the Event carrying it, or the
// validation error (an unknown Kind is one).
func (d *Draft) Event() (Event, error) {
	switch d.Kind {
	case KindTrade:
		return NewTradeEvent(d.Trade)
	case KindQuote:
		return NewQuoteEvent(d.Quote)
	case KindCandle:
		return NewCandleEvent(d.Candle)
	case KindGap:
		return NewGapEvent(d.Gap), nil
	}
	return Event{}, fmt.Errorf("ingest: event of unknown kind %d", d.Kind)
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
	// Time is the time of the first trade after the gap; LastTime that of the last
	// trade before it (zero when unknown). The missing trades lie between them.
	Time, LastTime time.Time
}
