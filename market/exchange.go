package market

import (
	"errors"
	"fmt"
)

// Exchange names a venue in lower case, e.g. "binance" or "coinbase". It is part of every
// Redis key and NATS subject that holds the venue's data, so it is restricted to
// [a-z0-9_-].
type Exchange string

// Exchanges tickstash knows by name. Other names are valid as long as they pass Validate.
const (
	Binance   Exchange = "binance"
	BinanceUS Exchange = "binanceus"
	Coinbase  Exchange = "coinbase"
	Kraken    Exchange = "kraken"
	Synthetic Exchange = "synthetic"
)

// ErrEmptyExchange is returned by Exchange.Validate for the empty name.
var ErrEmptyExchange = errors.New("market: empty exchange")

// Validate reports whether e can be used as an exchange name: non-empty, at most 32
// bytes, lower-case letters, digits, '-' and '_'.
func (e Exchange) Validate() error {
	if e == "" {
		return ErrEmptyExchange
	}
	if len(e) > 32 {
		return fmt.Errorf("market: exchange %q: longer than 32 bytes", string(e))
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("market: exchange %q: only a-z, 0-9, '-' and '_' are allowed", string(e))
		}
	}
	return nil
}
