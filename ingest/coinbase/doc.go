// Package coinbase connects to Coinbase's two public websocket feeds and decodes them:
//
//   - Advanced Trade (wss://advanced-trade-ws.coinbase.com, the default):
//     market_trades (snapshot and update events) → trades, ticker → quotes,
//     heartbeats and subscriptions acknowledged and ignored. market_trades' side is
//     taken as the taker's side, as Coinbase documents it. A snapshot lists the newest
//     trade first; wsfeed.Stream reorders by id before deduplicating.
//   - Exchange ws-feed (wss://ws-feed.exchange.coinbase.com): match and last_match →
//     trades, ticker → quotes. A match's side is the MAKER's side, so the taker's is the
//     opposite. last_match, sent on subscribing, repeats a trade already seen after a
//     reconnect and is dropped as a duplicate. level2, snapshot, heartbeat and
//     subscriptions messages are ignored.
//
// Coinbase product ids ("BTC-USD") are already canonical symbols. Prices and sizes are
// strings; times are RFC 3339 with microseconds (Exchange) or nanoseconds (Advanced
// Trade).
//
//	src := coinbase.New(coinbase.Config{Products: []string{"BTC-USD"}}, log, reg)
//	err := src.Run(ctx, out)
package coinbase
