package book

import (
	"time"

	"github.com/tickstash/tickstash/market"
)

// Kind says what a depth record is.
type Kind uint8

// Kinds of depth records.
const (
	// Update changes levels of a book already synced.
	Update Kind = iota
	// Snapshot replaces a book's levels (Binance: the REST depth snapshot).
	Snapshot
	// Sequence carries nothing but the connection's sequence number (Coinbase
	// Advanced Trade messages of other channels, heartbeats): it lets the syncer see
	// gaps in a sequence shared by every message of a connection.
	Sequence
)

// RawLevel is one level of a depth record as wire text; a zero quantity removes the
// level. Price and Qty alias the message they were decoded from.
type RawLevel struct {
	Side  Side
	Price []byte
	Qty   []byte
}

// Depth is one exchange depth message for one market, decoded but not yet applied:
// what an exchange's depth decoder produces and a Syncer consumes. Levels alias the
// decoded message and are valid until the decoder's next call.
type Depth struct {
	Kind   Kind
	Symbol market.Symbol
	// Time is the exchange's time of the message, or the receive time when it sends
	// none.
	Time time.Time
	// First and Last are the sequence numbers the message covers: Binance's U and u
	// (a snapshot's lastUpdateId in Last), Coinbase Advanced Trade's sequence_num in
	// both. Zero for feeds without sequence numbers.
	First, Last int64
	// Checksum is the exchange's checksum of the book after this message (Kraken),
	// valid when HasChecksum.
	Checksum    uint32
	HasChecksum bool
	// MaxDepth is the subscribed depth the book must be truncated to after each
	// message (Kraken's book-N); zero means no truncation.
	MaxDepth int
	Levels   []RawLevel
}

// ownedDepth is a Depth whose levels are copied out of the message, for buffering.
type ownedDepth struct {
	Depth
	text []byte
}

func own(d *Depth) ownedDepth {
	n := 0
	for _, l := range d.Levels {
		n += len(l.Price) + len(l.Qty)
	}
	o := ownedDepth{Depth: *d, text: make([]byte, 0, n)}
	o.Levels = make([]RawLevel, len(d.Levels))
	for i, l := range d.Levels {
		p := len(o.text)
		o.text = append(o.text, l.Price...)
		q := len(o.text)
		o.text = append(o.text, l.Qty...)
		o.Levels[i] = RawLevel{Side: l.Side, Price: o.text[p:q:q], Qty: o.text[q:len(o.text):len(o.text)]}
	}
	return o
}
