// Package pipeline is the one place where tickstash's stages meet: for every message one
// stage hands to the next it defines the subject (or key) builder, the JSON shape and the
// delivery contract, and both the sender and the receiver use these definitions. It
// imports only market; ingest, analysis and signals import it, never each other.
//
// # Contracts
//
//	contract         subject / medium                                  shape             delivery
//	candle closed    ts.candles.<exchange>.<symbol>.<interval>, core   market.Candle     at most once (notification)
//	                 NATS; the durable hop is the analysis job queue
//	                 (a Redis Streams consumer group, analysis.Queue)
//	analysis update  ts.analysis.<exchange>.<symbol>.<interval>,       AnalysisUpdate    at least once; duplicates
//	                 JetStream stream TS_ANALYSIS (limits retention)                     dropped by Nats-Msg-Id
//	signal           ts.signals.<strategy>.<exchange>.<symbol>,        market.Signal     at least once; duplicates
//	                 JetStream stream TS_SIGNALS (limits retention)                      dropped by Nats-Msg-Id
//	order book       ts.book.<exchange>.<symbol>, core NATS; the       BookSnapshot      at most once; latest wins
//	                 same bytes are the market's book key in Redis
//
// Candle closed. Ingest announces every candle it closed, after the candle is stored in
// Redis, in two ways: it calls its CandleSinks in process (the analysis queue's
// CandleClosed enqueues a job, durably, coalesced per market and interval) and publishes
// the candle's JSON record on CandleClosedSubject for live readers. The NATS message may
// be lost (core NATS); a reader that needs every candle reads the candles from Redis.
// Idempotency key: exchange, symbol, interval and open time.
//
// Analysis update. An analysis worker publishes the result of each job on
// AnalysisStream.Subject with Nats-Msg-Id AnalysisUpdate.MsgID (analyzer, market,
// interval, candle open time) and acknowledges the job only after the stream acknowledged
// the update; a job retried after a crash republishes the same id, which the stream drops
// inside its duplicate window. The signals role reads the stream through a durable
// consumer and acknowledges an update only after the signals it raised are stored in the
// signal stream, so a signals role that is down or restarting loses nothing younger than
// the stream's MaxAge. Ordering: the stream keeps publish order; updates of one market
// come in candle order from one worker, but a retried job can arrive after a newer
// update, and a reader must ignore an update that is not newer than the last it handled
// for that market (the signals role does). Core NATS subscribers of the same subjects
// (live readers) still receive every publish, duplicates included.
//
// Signal. The signals role publishes each signal on SignalSubject with Nats-Msg-Id
// market.Signal.ID (deterministic: strategy, market, interval, candle), so a republished
// signal is stored once. Bots read the signal stream with their own consumers.
//
// Order book. Ingest keeps every market's book synced and verified (package book) and
// its book writer (book/bookstore) writes, at most once per book interval and only when
// the book changed (plus a refresh of quiet books), the top N levels as a BookSnapshot:
// to the market's book key in Redis (with a TTL) and, with the same bytes, on
// BookSubject. Snapshots, not deltas: each message is the whole top of the book, so a
// subscriber needs no starting snapshot and a lost message costs nothing but one
// interval's freshness; a subscriber that starts late reads the Redis key (or waits one
// interval). Ordering: per market, Sequence and Written grow; a reader keeps the newest.
// A book that is not live is published with its state and reason and no levels.
//
// The sending side of an analysis update:
//
//	pub, err := pipeline.NewAnalysisPublisher(ctx, nc, pipeline.AnalysisStream{})
//	dup, err := pub.PublishUpdate(ctx, &update) // returns once the stream has it
//
// The receiving side decodes and checks what it reads:
//
//	u, err := pipeline.DecodeAnalysisUpdate(msg.Data())
package pipeline
