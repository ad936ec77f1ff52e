package market

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Trade is one execution on an exchange, normalized.
type Trade struct {
	Exchange Exchange
	Symbol   Symbol
	// ID is the exchange's trade id, the key for deduplication. Empty when the venue
	// sends none (Kraken v1); such trades cannot be deduplicated.
	ID    string
	Price decimal.Decimal
	Qty   decimal.Decimal
	Side  Side // the taker's side
	// Time is the exchange's execution time. Candles bucket by it.
	Time time.Time
	// ReceivedAt is when tickstash read the message; zero when unknown (e.g. a trade
	// read back from a normalized file).
	ReceivedAt time.Time
}

// Validation errors of Trade and Quote. Validate wraps them with the offending value.
var (
	ErrNonPositivePrice = errors.New("market: price must be positive")
	ErrNonPositiveQty   = errors.New("market: quantity must be positive")
	ErrNegative         = errors.New("market: value must not be negative")
	ErrZeroTime         = errors.New("market: time is missing")
)

// Validate checks that t can be stored and aggregated: a valid exchange and symbol, a
// positive price and quantity, and an exchange time. Errors wrap ErrNonPositivePrice,
// ErrNonPositiveQty, ErrZeroTime, ErrEmptySymbol or ErrEmptyExchange.
func (t *Trade) Validate() error {
	if err := t.Exchange.Validate(); err != nil {
		return err
	}
	if err := t.Symbol.Validate(); err != nil {
		return err
	}
	if t.Price.Sign() <= 0 {
		return fmt.Errorf("%w, got %s", ErrNonPositivePrice, t.Price)
	}
	if t.Qty.Sign() <= 0 {
		return fmt.Errorf("%w, got %s", ErrNonPositiveQty, t.Qty)
	}
	if t.Time.IsZero() {
		return ErrZeroTime
	}
	return nil
}

// FormatTime formats t in RFC 3339, UTC, keeping only the fractional digits that carry
// information; the format of every time in tickstash's JSON records.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// tradeJSON is the record form of a Trade.
type tradeJSON struct {
	Type     string          `json:"type"`
	Exchange Exchange        `json:"exchange"`
	Symbol   Symbol          `json:"symbol"`
	ID       string          `json:"id"`
	Price    decimal.Decimal `json:"price"`
	Qty      decimal.Decimal `json:"qty"`
	Side     string          `json:"side"`
	Time     string          `json:"time"`
}

// MarshalJSON writes the normalized trade record (see the package doc). ReceivedAt is
// not part of the record.
func (t Trade) MarshalJSON() ([]byte, error) {
	return json.Marshal(tradeJSON{
		Type: "trade", Exchange: t.Exchange, Symbol: t.Symbol, ID: t.ID,
		Price: t.Price, Qty: t.Qty, Side: t.Side.String(), Time: FormatTime(t.Time),
	})
}

// UnmarshalJSON reads a normalized trade record and validates it. "type" may be absent;
// if present it must be "trade". Symbols are accepted in any case and canonicalized.
func (t *Trade) UnmarshalJSON(b []byte) error {
	var r tradeJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("market: trade: %w", err)
	}
	if r.Type != "" && r.Type != "trade" {
		return fmt.Errorf("market: trade: type is %q, want \"trade\"", r.Type)
	}
	side, err := ParseSide(r.Side)
	if err != nil {
		return err
	}
	sym, err := ParseSymbol(string(r.Symbol))
	if err != nil {
		return err
	}
	var ts time.Time
	if r.Time != "" {
		if ts, err = time.Parse(time.RFC3339Nano, r.Time); err != nil {
			return fmt.Errorf("market: trade time %q: want RFC 3339, e.g. 2026-01-01T00:00:01.123Z", r.Time)
		}
	}
	v := Trade{Exchange: r.Exchange, Symbol: sym, ID: r.ID, Price: r.Price, Qty: r.Qty, Side: side, Time: ts.UTC()}
	if err := v.Validate(); err != nil {
		return err
	}
	*t = v
	return nil
}

// NumericID returns a trade id as a number when it is a decimal integer (every venue's
// ids but Kraken v1's empty ones), without the allocation strconv's error costs for one
// that is not: hot paths call it for every trade.
func NumericID(id string) (uint64, bool) {
	if id == "" || len(id) > 20 {
		return 0, false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return n, err == nil
}
