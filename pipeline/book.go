package pipeline

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tickstash/tickstash/market"
)

// BookPrefix starts every order-book subject.
const BookPrefix = "ts.book"

// BookSubject returns the core NATS subject of a market's order-book snapshots:
// ts.book.<exchange>.<symbol>, e.g. ts.book.binance.BTC-USDT.
func BookSubject(ex market.Exchange, sym market.Symbol) string {
	return BookPrefix + "." + string(ex) + "." + string(sym)
}

// Book states as BookSnapshot.State spells them (book.State's names).
const (
	BookLive  = "live"
	BookStale = "stale"
	BookEmpty = "empty"
)

// BookSnapshot is the top of one market's order book at one moment: the message
// published on BookSubject and the value of the market's book key in Redis (the same
// bytes). Levels are [price, quantity] pairs of exact decimal strings without trailing
// zeros, best first. A book that is not live carries its State and Reason and no
// levels: it is never presented as good.
//
//	{"exchange":"binance","symbol":"BTC-USDT","time":"2024-05-01T12:00:00.1Z","sequence":4711,
//	 "state":"live","depth":50,"bids":[["65083.66","0.23"]],"asks":[["65083.67","0.29"]],
//	 "written":"2024-05-01T12:00:00.15Z"}
type BookSnapshot struct {
	Exchange market.Exchange `json:"exchange"`
	Symbol   market.Symbol   `json:"symbol"`
	// Time is the exchange time of the last update applied (the receive time for
	// feeds that send none).
	Time time.Time `json:"time"`
	// Sequence is the exchange sequence of the last update applied (Binance u,
	// Coinbase Advanced sequence_num), or the count of updates since the snapshot for
	// feeds without one.
	Sequence int64 `json:"sequence"`
	// State is BookLive, BookStale or BookEmpty; Reason says why a book is not live.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Depth is the most levels per side the writer keeps (--book-depth); a side has
	// fewer when the book has fewer.
	Depth int         `json:"depth"`
	Bids  [][2]string `json:"bids"`
	Asks  [][2]string `json:"asks"`
	// Written is when tickstash wrote the snapshot: readers judge its age by it.
	Written time.Time `json:"written"`
}

// Validate checks what a reader relies on: a valid market, a known state, levels only
// when live.
func (s *BookSnapshot) Validate() error {
	if err := s.Exchange.Validate(); err != nil {
		return err
	}
	if err := s.Symbol.Validate(); err != nil {
		return err
	}
	switch s.State {
	case BookLive:
	case BookStale, BookEmpty:
		if len(s.Bids)+len(s.Asks) > 0 {
			return fmt.Errorf("book %s %s is %s but has levels", s.Exchange, s.Symbol, s.State)
		}
	default:
		return fmt.Errorf("book %s %s: unknown state %q", s.Exchange, s.Symbol, s.State)
	}
	if s.Written.IsZero() {
		return fmt.Errorf("book %s %s: no written time", s.Exchange, s.Symbol)
	}
	return nil
}

// EncodeBookSnapshot returns the JSON of s.
func EncodeBookSnapshot(s *BookSnapshot) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("pipeline: encode book: %w", err)
	}
	return b, nil
}

// DecodeBookSnapshot decodes a book snapshot (a NATS message or the Redis value). It
// returns an error wrapping ErrBadMessage if the JSON is malformed or the snapshot
// invalid.
func DecodeBookSnapshot(data []byte) (BookSnapshot, error) {
	var s BookSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return BookSnapshot{}, fmt.Errorf("%w: book: %v", ErrBadMessage, err)
	}
	if err := s.Validate(); err != nil {
		return BookSnapshot{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return s, nil
}
