// Package ingest takes market data in and writes it to Redis: sources (exchange
// connectors in subpackages, capture replay, the synthetic market) send Events; the
// Ingester folds trades into candles and writes trades, quotes and candles in batches,
// retrying while Redis is down; closed candles go to a CandleSink (the analysis queue,
// NATS).
//
//	src, _ := ingest.NewSynthetic(ingest.SyntheticConfig{Symbols: 4, Rate: 50})
//	g := ingest.NewIngester(store, sink, []ingest.Source{src}, ingest.IngesterConfig{}, log, reg)
//	err := g.Run(ctx) // until ctx ends; a *LostError if records could not be written
//
// Data is validated once, where it enters: an Event can only be built from a record
// that passes market's Validate (NewTradeEvent and its siblings, or Draft.Event, which
// the websocket stream calls on what a decoder produced). The ingester and the store
// rely on that and check nothing again; invalid records are counted at the boundary in
// tickstash_ingest_invalid_events_total.
//
// Inside Run, each source runs in a goroutine of its own; one router goroutine owns the
// aggregator and the batches and is the only sender to the writers, one goroutine per
// writer, each writing its shard of the markets in order. Run starts them all and
// returns after all of them have ended.
package ingest
