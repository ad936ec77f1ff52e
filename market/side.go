package market

import "fmt"

// Side is the side of the taker of a trade, the one who crossed the spread: Buy means an
// aggressive buyer lifted the ask. Exchanges report this differently (Binance's "buyer is
// maker" flag, Coinbase Exchange's maker side); connectors convert to the taker's side.
type Side uint8

// The taker sides. SideUnknown is for venues that do not say.
const (
	SideUnknown Side = iota
	Buy
	Sell
)

// String returns "buy", "sell" or "unknown".
func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	default:
		return "unknown"
	}
}

// ParseSide parses "buy", "sell" or "unknown" (also "b", "s", "" for unknown).
func ParseSide(s string) (Side, error) {
	switch s {
	case "buy", "b", "BUY", "Buy":
		return Buy, nil
	case "sell", "s", "SELL", "Sell":
		return Sell, nil
	case "", "unknown":
		return SideUnknown, nil
	}
	return SideUnknown, fmt.Errorf("market: side %q: want buy or sell", s)
}

// Opposite returns Sell for Buy, Buy for Sell and SideUnknown otherwise.
func (s Side) Opposite() Side {
	switch s {
	case Buy:
		return Sell
	case Sell:
		return Buy
	}
	return SideUnknown
}
