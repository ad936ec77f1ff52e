package market

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Quote is the top of an order book: best bid and ask with their sizes.
type Quote struct {
	Exchange Exchange
	Symbol   Symbol
	Bid      decimal.Decimal
	BidQty   decimal.Decimal
	Ask      decimal.Decimal
	AskQty   decimal.Decimal
	// Time is the exchange's time for the quote, or the receive time for feeds that
	// send none (Binance bookTicker).
	Time       time.Time
	ReceivedAt time.Time
}

// Validate checks exchange, symbol and time, and that no price or size is negative.
// A zero bid or ask means that side of the book is empty. Crossed quotes (bid > ask)
// are accepted: venues publish them briefly, and dropping them would hide that.
func (q *Quote) Validate() error {
	if err := q.Exchange.Validate(); err != nil {
		return err
	}
	if err := q.Symbol.Validate(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    decimal.Decimal
	}{{"bid", q.Bid}, {"bid_qty", q.BidQty}, {"ask", q.Ask}, {"ask_qty", q.AskQty}} {
		if f.v.Sign() < 0 {
			return fmt.Errorf("%w: %s is %s", ErrNegative, f.name, f.v)
		}
	}
	if q.Time.IsZero() {
		return ErrZeroTime
	}
	return nil
}

type quoteJSON struct {
	Type     string          `json:"type"`
	Exchange Exchange        `json:"exchange"`
	Symbol   Symbol          `json:"symbol"`
	Bid      decimal.Decimal `json:"bid"`
	BidQty   decimal.Decimal `json:"bid_qty"`
	Ask      decimal.Decimal `json:"ask"`
	AskQty   decimal.Decimal `json:"ask_qty"`
	Time     string          `json:"time"`
}

// MarshalJSON writes {"type":"quote","exchange",...,"bid","bid_qty","ask","ask_qty","time"}.
func (q Quote) MarshalJSON() ([]byte, error) {
	return json.Marshal(quoteJSON{
		Type: "quote", Exchange: q.Exchange, Symbol: q.Symbol,
		Bid: q.Bid, BidQty: q.BidQty, Ask: q.Ask, AskQty: q.AskQty, Time: FormatTime(q.Time),
	})
}

// UnmarshalJSON reads a quote record and validates it.
func (q *Quote) UnmarshalJSON(b []byte) error {
	var r quoteJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("market: quote: %w", err)
	}
	if r.Type != "" && r.Type != "quote" {
		return fmt.Errorf("market: quote: type is %q, want \"quote\"", r.Type)
	}
	sym, err := ParseSymbol(string(r.Symbol))
	if err != nil {
		return err
	}
	ts, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return fmt.Errorf("market: quote time %q: want RFC 3339", r.Time)
	}
	v := Quote{Exchange: r.Exchange, Symbol: sym, Bid: r.Bid, BidQty: r.BidQty, Ask: r.Ask, AskQty: r.AskQty, Time: ts.UTC()}
	if err := v.Validate(); err != nil {
		return err
	}
	*q = v
	return nil
}
