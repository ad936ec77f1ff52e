package market

import (
	"errors"
	"fmt"
	"strings"
)

// Symbol is a canonical instrument name, "BASE-QUOTE" in upper case: "BTC-USDT",
// "ETH-USD". Exchanges name the same instrument differently (Binance "BTCUSDT", Kraken
// "XBT/USD"); connectors translate to Symbol, and keep the exchange's own spelling in
// Instrument.Native.
type Symbol string

// ErrEmptySymbol is returned for an empty symbol.
var ErrEmptySymbol = errors.New("market: empty symbol")

// NewSymbol builds the canonical symbol of base and quote, upper-casing both.
func NewSymbol(base, quote string) Symbol {
	return Symbol(strings.ToUpper(base) + "-" + strings.ToUpper(quote))
}

// ParseSymbol parses "BASE-QUOTE" in any case (also "BASE/QUOTE") and returns its
// canonical form. It returns ErrEmptySymbol for "" and an error naming the input when
// it is not two assets of [A-Z0-9] separated by one '-' or '/'.
func ParseSymbol(s string) (Symbol, error) {
	if s == "" {
		return "", ErrEmptySymbol
	}
	sym := Symbol(strings.ToUpper(strings.Replace(s, "/", "-", 1)))
	if err := sym.Validate(); err != nil {
		return "", err
	}
	return sym, nil
}

// Validate reports whether s is canonical: BASE-QUOTE, each 1 to 16 characters of
// [A-Z0-9], 33 bytes at most.
func (s Symbol) Validate() error {
	if s == "" {
		return ErrEmptySymbol
	}
	base, quote, ok := strings.Cut(string(s), "-")
	if !ok || !validAsset(base) || !validAsset(quote) {
		return fmt.Errorf("market: symbol %q: want BASE-QUOTE, each of A-Z and 0-9 (e.g. BTC-USDT)", string(s))
	}
	return nil
}

func validAsset(a string) bool {
	if a == "" || len(a) > 16 {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Base returns the part before '-', or "" if s is not canonical.
func (s Symbol) Base() string {
	base, _, ok := strings.Cut(string(s), "-")
	if !ok {
		return ""
	}
	return base
}

// Quote returns the part after '-', or "" if s is not canonical.
func (s Symbol) Quote() string {
	_, quote, _ := strings.Cut(string(s), "-")
	return quote
}

// Instrument is a symbol on one exchange together with the exchange's own name for it.
type Instrument struct {
	Exchange Exchange
	Symbol   Symbol
	// Native is the exchange's spelling, e.g. "BTCUSDT" on Binance, "XBT/USD" on
	// Kraken. Empty when the exchange uses the canonical name.
	Native string
}

// Validate checks the exchange and the symbol.
func (in Instrument) Validate() error {
	if err := in.Exchange.Validate(); err != nil {
		return err
	}
	return in.Symbol.Validate()
}

// String returns "exchange:SYMBOL", the form used in logs and flags.
func (in Instrument) String() string { return string(in.Exchange) + ":" + string(in.Symbol) }
