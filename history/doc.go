// Package history fills tickstash's candle store from the exchanges' REST history
// (backfill), and repairs trade gaps of the live feeds (gap repair), so that candles
// stay exact across outages.
//
// # Backfill
//
//	m := history.NewMetrics(reg)                     // once per registry
//	v, err := history.NewVenue("binance", history.VenueConfig{BaseURL: ""}, m)
//	bf := history.NewBackfiller(store, rdb, m, history.BackfillConfig{})
//	res, err := bf.Run(ctx, history.Job{Venue: v, Symbol: "BTC-USDT", Interval: market.Interval1m,
//	From: from, To: to, Progress: func(p history.Progress) { bar.Set(p.Done, p.Total, p.ETA) }})
//
// Candles are stored through the market store (cache.MarketStore.Write): upserted by open
// time in the same sorted set, with the same retention and TTL as live candles, closed,
// and marked "src":"rest" in their record (market.Candle.Source). Only candles that have
// ended by the clock and have volume are stored (live ingest skips quiet intervals too).
// By default an open time that already has a candle (a live one, or an earlier backfill)
// is left alone, so a rerun stores nothing; BackfillConfig.Overwrite replaces them.
// After each page the position is saved in Redis under
// <prefix>:{exchange:SYMBOL}:backfill:<interval> (a JSON string with a TTL, 7 days by
// default); the same job run again after a crash or Ctrl-C continues from there. The
// range is cut to whole buckets and to the store's candle retention.
//
// An interval a venue does not offer is built from the longest offered interval that
// divides it (Rollup: open of the first, close of the last, highest high, lowest low,
// summed volume, quote volume and trade count; the quote volume only when every part
// has one), e.g. 3m from 1m on Coinbase and Kraken, 4h from 1h on Coinbase. A candle
// whose venue reports no quote volume has QuoteVolume zero and its VWAP is its close.
// 1s candles exist only on Binance (not Binance.US). Job.FromTrades builds the candles
// from the venue's trade history instead (Binance aggTrades, Kraken Trades, an hour a
// window), exact like live aggregation: for 1s elsewhere, and for ranges older than a
// venue keeps candles (Kraken: its last 720).
//
// # Venues, as documented by the exchanges
//
// Numbers are parsed from the raw JSON token into decimals, never through float64.
//
//	venue              endpoint                                           per request  intervals offered
//	binance            GET /api/v3/klines?symbol&interval&startTime&endTime&limit   1000  1s 1m 3m 5m 15m 30m 1h 4h 1d
//	binanceus          the same on api.binance.us                                     1000  as binance, no 1s
//	coinbase-exchange  GET /products/{id}/candles?granularity&start&end                300  1m 5m 15m 1h 1d
//	coinbase           GET /api/v3/brokerage/market/products/{id}/candles?start&end&granularity  350  1m 5m 15m 30m 1h 1d
//	kraken             GET /0/public/OHLC?pair&interval&since                          720  1m 5m 15m 30m 1h 4h 1d
//
// Their shapes and time semantics:
//
//   - Binance klines: rows [openTime ms, "o","h","l","c","volume", closeTime ms,
//     "quoteVolume", trades, …], oldest first; startTime and endTime (ms) are inclusive
//     and select by open time. Quiet intervals come as zero-volume rows at the previous
//     close (not stored). Request weight 2; the weight used in the current minute comes
//     back in X-MBX-USED-WEIGHT-1M: at VenueConfig.BinanceWeightLimit (1000) the client
//     waits for the next minute. 429 means slow down, 418 an IP ban: both carry
//     Retry-After (seconds), which is honoured (418 without it waits 2 minutes).
//   - Coinbase Exchange candles: rows [time s, low, high, open, close, volume] of JSON
//     numbers, newest first; time is the bucket start; start and end (RFC 3339) are
//     inclusive; more than 300 buckets in the range is refused, so each request asks for
//     at most 300 (end = the last bucket's start). Quiet buckets are absent. No quote
//     volume, no trade count. Public rate limit about 10 requests/s (8 used).
//   - Coinbase Advanced Trade public candles: {"candles":[{"start":"<unix s>","low",
//     "high","open","close","volume"}]} as strings, newest first; start and end in Unix
//     seconds; at most 350 a request; granularity ONE_MINUTE, FIVE_MINUTE,
//     FIFTEEN_MINUTE, THIRTY_MINUTE, ONE_HOUR, TWO_HOUR, SIX_HOUR, ONE_DAY.
//   - Kraken OHLC: {"error":[],"result":{"<PAIR>":[[time s,"open","high","low","close",
//     "vwap","volume",count]],"last":<s>}}; entries after since, oldest first; the last
//     one is the current, still forming interval; only the 720 most recent entries exist,
//     whatever since says, so an older range is not available from Kraken (build it from
//     trades instead). The quote volume stored is vwap × volume (Kraken rounds its vwap).
//     Pairs use Kraken's names (BTC is XBT, DOGE is XDG). Public calls are limited to
//     about 1 a second; a 200 answer with "EAPI:Rate limit exceeded" is retried.
//
// Every venue is paced by a client-side limiter (VenueConfig.RequestsPerSecond); 5xx
// and transport errors are retried with exponential backoff (0.5 s doubling to 30 s),
// other 4xx fail at once wrapping ErrRequest, with the venue's message. Base URLs are
// configurable (VenueConfig.BaseURL) for tests and proxies.
//
// # Gap repair
//
//	rp := history.NewRepairer([]history.Venue{binance, coinbaseExchange, kraken}, store, m, history.RepairConfig{})
//	res, err := rp.Repair(ctx, history.Gap{Exchange: ex, Symbol: sym, FromID: "101", ToID: "180",
//	From: lastTradeTime, To: firstTradeAfterGapTime, Detected: time.Now()}, intervals, nil)
//
// FetchGap returns the missing trades as market.Trade values, in exchange order, each
// once, without the ids the caller already holds:
//
//   - Binance: GET /api/v3/historicalTrades?fromId&limit=1000 for trade-stream ids, or
//     /api/v3/aggTrades?fromId (VenueConfig.BinanceAggTradeIDs) for aggTrade ids; a gap
//     known only by time pages /api/v3/aggTrades?startTime&endTime (an hour at most per
//     window), then by fromId.
//   - Coinbase Exchange: GET /products/{id}/trades?after=<id>&limit=1000 answers the
//     trades older than after, newest first, and the next cursor in the CB-AFTER header.
//     It pages by id only; Coinbase's trade ids are the same on Advanced Trade, so use
//     this venue for the "coinbase" exchange's gaps.
//   - Kraken: GET /0/public/Trades?pair&since=<ns>&count=1000: [price, volume, time s,
//     "b"|"s", "m"|"l", misc, trade_id] oldest first, result.last the next since; it
//     pages by time, so a Kraken gap needs From and To.
//
// The trade stream in Redis cannot take the repaired trades after later ones (stream
// ids only grow), so RecomputeCandles rebuilds the candles of the touched buckets from
// the stream merged with them and upserts them closed, "src":"repair". Repair waits
// for the buckets to end plus RepairConfig.Grace first, so the live aggregator's own
// closed candle does not land after the repaired one. Gaps that cannot be filled fail
// with *UnrepairableError and are counted by reason.
//
// Live ingest does not wait by the clock: cmd/tickstash wires FetchGap and
// RebuildCandles (RecomputeCandles returning the candles it wrote) into ingest's
// GapRepairer, and ingest rebuilds a gap's candles once its aggregator has closed them
// and their trades are written, then queues their analysis again. The command
// `tickstash backfill` runs Backfiller jobs.
//
// # Metrics
//
// See NewMetrics: requests by venue and status, candles backfilled, trades repaired,
// gaps unrepairable by reason, repair lag.
package history
