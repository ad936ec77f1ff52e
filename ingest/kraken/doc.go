// Package kraken connects to Kraken's public websocket API and decodes both versions:
//
//   - v2 (wss://ws.kraken.com/v2, the default for live feeds): JSON objects,
//     {"channel":"trade"|"ticker","type":"snapshot"|"update","data":[...]}. Prices and
//     quantities are JSON numbers; they are decoded from the number's source text,
//     never through float64. Trades carry a per-pair sequential trade_id, so gaps and
//     duplicates are detected. The client sends {"method":"ping"} every PingEvery and
//     ignores the pong; heartbeat and status messages are ignored.
//   - v1 (wss://ws.kraken.com; the recorded capture): arrays
//     [channelID, payload, channelName, pair] with prices as strings. v1 trades have no
//     id, so they cannot be deduplicated or checked for gaps. v1 tickers carry no
//     time; their quotes are stamped with the receive time. Event objects
//     (heartbeat, systemStatus, subscriptionStatus, pong) are ignored.
//
// Symbols: Kraken names assets its own way in v1 ("XBT/USD", "XDG/USD"); the mapping to
// common names is explicit (AssetAliases: XBT → BTC, XDG → DOGE) and applies to both
// versions, so "XBT/USD" and v2's "BTC/USD" are both market.Symbol "BTC-USD". The
// mapping is one-way: subscribe with the exchange's own spelling.
//
//	src := kraken.New(kraken.Config{Pairs: []string{"BTC/USD"}}, log, reg)
//	err := src.Run(ctx, out)
package kraken
