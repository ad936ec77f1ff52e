// Package bookstore keeps order books in Redis: a Writer that takes the latest top of
// every book a feed keeps and writes it at a bounded rate, and a Reader that returns a
// stored book with whether it is stale and why.
//
// Per market one string key, cache.Keyspace.Book: ts:{exchange:SYMBOL}:book, holding
// the pipeline.BookSnapshot JSON (the top Depth levels per side, the sequence, the
// exchange time, the state and, when not live, the reason) with a TTL. The best bid/ask
// of a live book also goes into the market's ticker hash, ts:{exchange:SYMBOL}:ticker,
// which shares the hash tag, so the writer works on Redis Cluster. The same bytes are
// published on pipeline.BookSubject when a Publisher is configured.
//
//	w := bookstore.New(rdb, bookstore.Config{Depth: 50, Interval: 100 * time.Millisecond, Publisher: nc}, log, reg)
//	go w.Run(ctx)
//	syncer.Apply(recs)
//	w.Offer(syncer.Book(sym)) // copies the top; the next flush writes it
//
//	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{})
//	e, err := r.Read(ctx, market.Binance, "BTC-USDT") // e.Stale, e.Reason
//	b, err := e.Book()                                // a *book.StaleError when stale
package bookstore
