// Package book keeps L2 order books — per side, the aggregate quantity at each price —
// synced to exchange depth feeds and verified against them.
//
// # Model
//
// A Book holds exact decimals as int64 mantissas at one price scale and one quantity
// scale per book, taken from the wire text ("0.35210000" is 3521 at scale 4; trailing
// zeros do not widen the scale, so large quantities keep their room). When a finer
// price or quantity appears, every level is rescaled first; a value that cannot be held
// in 18 digits is refused with ErrNumber and the book goes stale instead of rounding.
// Nothing passes through float64. Levels of a side live in a treap threaded in price
// order, plus an open-addressing index by price: an update of an existing level is
// O(1), an insert O(log n) expected, the best level and the walk from the top O(1) per
// step, and once a book has reached its working size, applying updates allocates
// nothing.
//
// Readers get exact decimals: Top, Best, Spread, Mid, Microprice, Imbalance of the top
// k levels, DepthWithin ±bps of the mid, and Walk — the fill, average price and
// slippage of buying or selling a quantity at market. Quotients that need not
// terminate are rounded at RatioPlaces (documented on each).
//
// # Integrity contract
//
// Every book has a Status: StateEmpty until its first snapshot, StateLive while every
// update since has verified, StateStale with a Reason once one has not — a sequence
// gap, a checksum mismatch, a crossed (or locked) book, or a number that does not fit.
// A stale book stays stale until the next snapshot. Its readers return a *StaleError
// carrying the state and reason: a stale book is never presented as good. Each book
// also carries its Sequence (the exchange's, or the count of updates since the
// snapshot for feeds without one) and the time of its last update.
//
// # Feeds
//
// The exchanges' depth decoders (ingest/binance, ingest/coinbase, ingest/kraken) turn
// messages into Depth records without applying them; a Syncer, one per connection,
// applies them by the exchange's Rules and reports Notices (synced, resynced, stale):
//
//	dec := kraken.NewDepthDecoder(0)
//	s := book.NewSyncer(market.Kraken, book.RulesKraken, book.SyncConfig{Notify: report})
//	recs, err := dec.Decode(recs[:0], msg, recvTime)
//	s.Apply(recs)
//	mid, err := s.Book("BTC-USD").Mid() // a *StaleError unless the book is live
//
// RulesBinance (Binance, Binance.US <symbol>@depth@100ms): diffs carry U (first update
// id) and u (last). Diffs are buffered (SyncConfig.MaxBuffered) while the REST snapshot
// (GET /api/v3/depth?symbol=..&limit=1000, its lastUpdateId) is fetched; buffered and
// later diffs with u ≤ lastUpdateId are dropped; the first applied diff must have
// U ≤ lastUpdateId+1 ≤ u, and every next one U = previous u + 1. Anything else is a
// gap: the book goes stale, diffs are buffered again, and the owner must fetch a new
// snapshot (the Notice says so). Sequence is u.
//
// RulesCoinbase (Coinbase Exchange level2): a snapshot, then l2update changes. The
// channel carries no sequence number, so only crossing is verified; Sequence counts
// the updates since the snapshot.
//
// RulesCoinbaseAdvanced (Advanced Trade level2, channel l2_data): sequence_num counts
// every message of the connection across channels, so every message must reach the
// Syncer (other channels as Sequence records). A repeated number is dropped; a gap
// means lost messages of unknown markets and makes every book of the connection stale
// until its next snapshot (resubscribe). Sequence is the sequence_num.
//
// RulesKraken (v1 book-N arrays, v2 channel book): a snapshot, then updates, each
// applied whole, truncated to the subscribed depth (Kraken sends no delete for levels
// pushed out of it), then verified against the message's CRC32 of the top 10 levels:
// asks best first, then bids best first, price and quantity each written with the
// wire's decimals, '.' removed and leading zeros stripped, concatenated (see
// KrakenChecksum). A mismatch makes the book stale until a new snapshot (resubscribe).
// Sequence counts the updates since the snapshot.
//
// After every message of every feed, a book whose best bid is at or above its best ask
// goes stale.
//
// Package bookreplay replays capture files through all of this (tickstash books).
package book
