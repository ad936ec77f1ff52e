package cache

import (
	"github.com/tickstash/tickstash/market"
)

// DefaultPrefix starts every key tickstash writes.
const DefaultPrefix = "ts"

// Keyspace builds every Redis key of the market-data store. It is the one place where key
// names are spelled.
type Keyspace struct {
	prefix string
}

// NewKeyspace returns the keyspace under prefix; "" means DefaultPrefix. Tests use their
// own prefix to stay apart.
func NewKeyspace(prefix string) Keyspace {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keyspace{prefix: prefix}
}

// Prefix returns the prefix every key starts with.
func (k Keyspace) Prefix() string { return k.prefix }

// Tag returns the hash tag of one market, "{exchange:SYMBOL}".
func Tag(ex market.Exchange, sym market.Symbol) string {
	return "{" + string(ex) + ":" + string(sym) + "}"
}

// Trades is the stream of a market's trades.
func (k Keyspace) Trades(ex market.Exchange, sym market.Symbol) string {
	return k.prefix + ":" + Tag(ex, sym) + ":trades"
}

// Ticker is the hash with a market's last trade and best bid/ask.
func (k Keyspace) Ticker(ex market.Exchange, sym market.Symbol) string {
	return k.prefix + ":" + Tag(ex, sym) + ":ticker"
}

// Book is the string holding a market's order-book snapshot (pipeline.BookSnapshot
// JSON), written by book/bookstore with a TTL.
func (k Keyspace) Book(ex market.Exchange, sym market.Symbol) string {
	return k.prefix + ":" + Tag(ex, sym) + ":book"
}

// Candles is the sorted set of a market's candles of one interval.
func (k Keyspace) Candles(ex market.Exchange, sym market.Symbol, iv market.Interval) string {
	return k.prefix + ":" + Tag(ex, sym) + ":candles:" + iv.String()
}

// Markets is the sorted set of every market with recent data, member "exchange:SYMBOL",
// score the time of its last write in Unix milliseconds.
func (k Keyspace) Markets() string { return k.prefix + ":markets" }
