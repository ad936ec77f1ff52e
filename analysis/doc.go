// Package analysis runs indicator jobs: a job queue on a Redis Streams consumer group
// (at-least-once delivery, takeover of stuck jobs after a lease, retries with backoff,
// a dead-letter stream, jobs coalesced per market, interval and analyzer), the worker
// that computes a job's indicators over the cached candles, and the results store, whose
// writes are fenced so a worker whose lease expired cannot overwrite a newer result.
// The indicator math itself is package analysis/indicator, which knows nothing of Redis
// or NATS.
//
//	q := analysis.NewQueue(rdb, analysis.QueueConfig{}, reg)
//	id, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m})
//	w := analysis.NewWorker(q, candles, nc, analysis.WorkerConfig{}, log, reg)
//	err = w.Run(ctx)                         // until ctx ends
//	res, err := q.LatestResult(ctx, market.Binance, "BTC-USDT", market.Interval1m)
package analysis
