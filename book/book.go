package book

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/market"
)

// Side says which side of a book a level is on.
type Side uint8

// Sides.
const (
	Bid Side = iota
	Ask
)

func (s Side) String() string {
	if s == Bid {
		return "bid"
	}
	return "ask"
}

// State is a book's integrity state.
type State uint8

// States. Only a StateLive book is presented as good.
const (
	// StateEmpty: no snapshot yet; the book is being synced.
	StateEmpty State = iota
	// StateLive: synced to a snapshot and every update since verified.
	StateLive
	// StateStale: a gap, a checksum mismatch, a crossed book or a bad number was
	// seen; the reason says which. It stays stale until the next snapshot.
	StateStale
)

func (s State) String() string {
	switch s {
	case StateLive:
		return "live"
	case StateStale:
		return "stale"
	}
	return "empty"
}

// Status is what a reader learns about a book's integrity.
type Status struct {
	State State
	// Reason says why the book is stale (or, when empty, what it waits for).
	Reason string
	// Sequence is the exchange sequence of the last update applied (Binance u,
	// Coinbase Advanced sequence_num); for feeds without one, the number of updates
	// applied since the snapshot.
	Sequence int64
	// Time is the exchange time of the last update applied (the receive time for
	// feeds that send none).
	Time time.Time
}

// StaleError is returned by a book's readers when the book is not live.
type StaleError struct {
	Exchange market.Exchange
	Symbol   market.Symbol
	State    State
	Reason   string
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("book: %s %s is %s: %s; wait for the next snapshot (a resync)", e.Exchange, e.Symbol, e.State, e.Reason)
}

// Level is one price level with exact decimals.
type Level struct {
	Price decimal.Decimal
	Qty   decimal.Decimal
}

// Book is the L2 order book of one market: per side, the aggregate quantity at each
// price. Prices and quantities are exact: int64 mantissas at one price scale and one
// quantity scale per book, taken from the wire text and widened (rescaling every level)
// when a finer one appears. Apply costs O(log n) and allocates nothing once the book
// has reached its working size.
//
// A Book is not safe for concurrent use.
type Book struct {
	exchange market.Exchange
	symbol   market.Symbol
	bids     side
	asks     side
	// pscale and qscale are the scales of the mantissas; ptext and qtext the widest
	// fractions seen on the wire (for checksums that hash the wire text).
	pscale, qscale int
	ptext, qtext   int
	status         Status
	scratch        []byte // the checksum text
}

// New returns an empty book of a market; it is StateEmpty until MarkLive.
func New(ex market.Exchange, sym market.Symbol) *Book {
	b := &Book{exchange: ex, symbol: sym, scratch: make([]byte, 0, 2*checksumLevels*48)}
	b.bids.init()
	b.asks.init()
	b.status.Reason = "waiting for a snapshot"
	return b
}

// Exchange returns the book's exchange.
func (b *Book) Exchange() market.Exchange { return b.exchange }

// Symbol returns the book's market.
func (b *Book) Symbol() market.Symbol { return b.symbol }

// Status returns the book's integrity state, reason, sequence and time.
func (b *Book) Status() Status { return b.status }

// Clear removes every level (before loading a snapshot). The state is unchanged.
func (b *Book) Clear() {
	b.bids.clear()
	b.asks.clear()
}

// MarkLive declares the book synced (after a snapshot was loaded).
func (b *Book) MarkLive(seq int64, t time.Time) {
	b.status = Status{State: StateLive, Sequence: seq, Time: t}
}

// Advance records an applied update's sequence and time.
func (b *Book) Advance(seq int64, t time.Time) {
	b.status.Sequence = seq
	if !t.IsZero() {
		b.status.Time = t
	}
}

// MarkStale makes the book stale with a reason; readers get a *StaleError until the
// next MarkLive. A book already stale keeps its first reason.
func (b *Book) MarkStale(reason string) {
	if b.status.State == StateStale {
		return
	}
	b.status.State = StateStale
	b.status.Reason = reason
}

// Len returns the number of levels on a side.
func (b *Book) Len(s Side) int { return b.side(s).n }

func (b *Book) side(s Side) *side {
	if s == Bid {
		return &b.bids
	}
	return &b.asks
}

// Set makes the quantity at price on side s the given one, both as decimal wire text
// ("0.35210000"; exponents are accepted); a zero quantity removes the level. It
// returns an error wrapping ErrNumber, and changes nothing, for text that is not a
// non-negative decimal or that does not fit 18 digits at the book's scales.
func (b *Book) Set(s Side, price, qty []byte) error {
	p, err := parseFixed(price)
	if err != nil {
		return err
	}
	q, err := parseFixed(qty)
	if err != nil {
		return err
	}
	return b.set(s, p, q)
}

// SetDecimal is Set with decimals.
func (b *Book) SetDecimal(s Side, price, qty decimal.Decimal) error {
	p, err := fromDecimal(price)
	if err != nil {
		return err
	}
	q, err := fromDecimal(qty)
	if err != nil {
		return err
	}
	return b.set(s, p, q)
}

func (b *Book) set(s Side, p, q fixed) error {
	if p.mant == 0 && q.mant != 0 {
		return fmt.Errorf("%w: price zero", ErrNumber)
	}
	if p.scale > b.pscale || q.scale > b.qscale {
		if err := b.widen(max(p.scale, b.pscale), max(q.scale, b.qscale)); err != nil {
			return err
		}
	}
	pm, ok1 := rescale(p.mant, p.scale, b.pscale)
	qm, ok2 := rescale(q.mant, q.scale, b.qscale)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: level does not fit 18 digits at %d price and %d quantity decimals", ErrNumber, b.pscale, b.qscale)
	}
	b.ptext = max(b.ptext, p.text)
	b.qtext = max(b.qtext, q.text)
	if s == Bid {
		b.bids.set(-pm, qm)
	} else {
		b.asks.set(pm, qm)
	}
	return nil
}

// widen moves the book to finer scales.
func (b *Book) widen(ps, qs int) error {
	dp, dq := ps-b.pscale, qs-b.qscale
	if !b.bids.fits(dp, dq) || !b.asks.fits(dp, dq) {
		return fmt.Errorf("%w: widening to %d price and %d quantity decimals overflows", ErrNumber, ps, qs)
	}
	b.bids.scale(dp, dq)
	b.asks.scale(dp, dq)
	b.pscale, b.qscale = ps, qs
	return nil
}

// Truncate keeps the best depth levels of each side (Kraken: the subscribed depth).
func (b *Book) Truncate(depth int) {
	b.bids.truncate(depth)
	b.asks.truncate(depth)
}

// Crossed reports whether the best bid is at or above the best ask.
func (b *Book) Crossed() bool {
	if b.bids.best == 0 || b.asks.best == 0 {
		return false
	}
	return -b.bids.nodes[b.bids.best].key >= b.asks.nodes[b.asks.best].key
}

// check returns a *StaleError unless the book is live.
func (b *Book) check() error {
	if b.status.State == StateLive {
		return nil
	}
	return &StaleError{Exchange: b.exchange, Symbol: b.symbol, State: b.status.State, Reason: b.status.Reason}
}

// price returns the price mantissa of a node of side s.
func (b *Book) price(s Side, n *node) int64 {
	if s == Bid {
		return -n.key
	}
	return n.key
}

// Levels calls fn with the best n levels of side s (all if n ≤ 0), best first, as
// mantissas at the book's scales; fn returns false to stop. It does not check the
// book's state and does not allocate.
func (b *Book) Levels(s Side, n int, fn func(price, qty int64) bool) {
	sd := b.side(s)
	i := 0
	for x := sd.best; x != 0 && (n <= 0 || i < n); x = sd.nodes[x].next {
		nd := &sd.nodes[x]
		if !fn(b.price(s, nd), nd.qty) {
			return
		}
		i++
	}
}

// Scales returns the decimal places of the mantissas Levels hands out.
func (b *Book) Scales() (price, qty int) { return b.pscale, b.qscale }

// AppendLevel appends price and quantity mantissas (at the book's scales) as a JSON
// pair of decimal strings without trailing zeros: ["0.3521","672"].
func (b *Book) AppendLevel(dst []byte, price, qty int64) []byte {
	dst = append(dst, '[', '"')
	dst = appendFixed(dst, price, b.pscale)
	dst = append(dst, '"', ',', '"')
	dst = appendFixed(dst, qty, b.qscale)
	return append(dst, '"', ']')
}

// Top returns the best n levels of side s (all if n ≤ 0), best first. It returns a
// *StaleError unless the book is live.
func (b *Book) Top(s Side, n int) ([]Level, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.top(s, n), nil
}

func (b *Book) top(s Side, n int) []Level {
	var out []Level
	b.Levels(s, n, func(p, q int64) bool {
		out = append(out, Level{Price: toDecimal(p, b.pscale), Qty: toDecimal(q, b.qscale)})
		return true
	})
	return out
}

// Best returns the best level of side s; ok is false when the side is empty. It
// returns a *StaleError unless the book is live.
func (b *Book) Best(s Side) (l Level, ok bool, err error) {
	if err := b.check(); err != nil {
		return Level{}, false, err
	}
	sd := b.side(s)
	if sd.best == 0 {
		return Level{}, false, nil
	}
	nd := &sd.nodes[sd.best]
	return Level{Price: toDecimal(b.price(s, nd), b.pscale), Qty: toDecimal(nd.qty, b.qscale)}, true, nil
}

// Qty returns the quantity at price on side s (zero if there is no level), without
// checking the book's state.
func (b *Book) Qty(s Side, price decimal.Decimal) decimal.Decimal {
	p, err := fromDecimal(price)
	if err != nil || p.scale > b.pscale {
		return decimal.Zero
	}
	pm, ok := rescale(p.mant, p.scale, b.pscale)
	if !ok {
		return decimal.Zero
	}
	key := pm
	if s == Bid {
		key = -pm
	}
	return toDecimal(b.side(s).get(key), b.qscale)
}
