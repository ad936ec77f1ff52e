// Package market is tickstash's domain vocabulary: exchanges, symbols, the taker side,
// trades, quotes, candles and their intervals.
//
// It does no I/O. Every other package speaks these types, so they validate themselves
// (Trade.Validate, Candle.Validate, ParseInterval, ParseSymbol) and carry prices and
// quantities as exact decimals (github.com/shopspring/decimal), never float64.
//
// The JSON forms of Trade and Candle are tickstash's normalized record format, the one
// `tickstash candles` reads and writes:
//
//	{"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"1","price":"95000.01",
//	 "qty":"0.01","side":"buy","time":"2026-01-01T00:00:01.123456Z"}
//
// Decimals are JSON strings without trailing zeros; times are RFC 3339 in UTC with as many
// fractional digits as the source gave.
package market
