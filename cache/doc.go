// Package cache owns tickstash's Redis keyspace for market data and the typed stores over
// it.
//
// Every key starts with a prefix ("ts" by default) and every per-market key carries the
// hash tag {<exchange>:<symbol>}, so all keys of one market live in one Redis Cluster
// slot:
//
//	ts:{binance:BTC-USDT}:trades        stream of trades, trimmed by MINID to the retention window
//	ts:{binance:BTC-USDT}:ticker        hash: last trade and best bid/ask
//	ts:{binance:BTC-USDT}:candles:1m    sorted set of candles scored by open time (ms)
//	ts:markets                          sorted set of "exchange:SYMBOL" scored by last update (ms)
//
// Every key has a TTL, refreshed on write, and the collections are also trimmed by the
// data's own time, so nothing grows without bound. Writes are idempotent: trades are
// stream entries whose ids derive from the exchange's time and trade id (Redis refuses a
// second copy), and candles are upserted by open time.
//
// The main calls:
//
//	rdb, err := redisconn.Connect(ctx, "redis://127.0.0.1:6379/0")
//	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, prometheus.NewRegistry())
//	res, err := store.Write(ctx, &cache.Batch{Trades: trades, Candles: candles})
//	last, err := store.LastCandles(ctx, market.Binance, "BTC-USDT", market.Interval1m, 100)
//
// The errors ErrNotFound, ErrInvalid, ErrTooLarge and ErrConflict are the store errors
// every Redis store of tickstash wraps, so the gateway maps them to HTTP statuses in one
// place. The stores for bots live in subpackages: cache/session (sessions),
// cache/userstate (versioned user state documents) and cache/ttlcache (the TTL cache layer
// with read-through loading).
package cache
