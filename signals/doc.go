// Package signals turns analysis results into trading signals and delivers them to bots
// over NATS JetStream.
//
// A Role reads the analysis updates (the stage contract pipeline.AnalysisUpdate, from the
// JetStream stream TS_ANALYSIS, subjects ts.analysis.>) through a durable consumer that
// all its instances share, runs each applicable Strategy's rules — RSI crossing its thresholds, MACD crossing its signal line, the
// close breaking out of the Bollinger Bands, a fast moving average crossing a slow one —
// against the previous update of the same market and interval (kept in Redis with a
// TTL, so a restarted role neither misses nor repeats a cross) and publishes the
// market.Signal they raise with a Distributor. It acknowledges an update only after its
// signals are stored and its rule state saved, so the analysis → signals hop is at least
// once: a role killed or restarting loses nothing (the update is delivered again), and
// handling an update twice publishes nothing twice (deterministic signal ids, rule state).
// Updates are handled one at a time in stream order, across all instances.
//
//	strategies, err := signals.LoadStrategies("strategies.yaml") // errors give file:line
//	err = signals.CheckColumns(strategies, analyzerColumns)      // a rule the analyzer can't feed
//	dist, err := signals.NewDistributor(ctx, nc, signals.DistributorConfig{}, log, reg)
//	role, err := signals.NewRole(ctx, nc, rdb, dist, marketStore,
//		signals.RoleConfig{Strategies: strategies, Columns: analyzerColumns}, log, reg)
//	err = role.Run(ctx)
//
// The Distributor creates or updates the stream (subjects ts.signals.>, limits
// retention) and publishes asynchronously, waiting for every ack and retrying with the
// same Nats-Msg-Id — the signal's deterministic id — so that a broker restart neither
// loses nor duplicates a signal. Signals are published on
// ts.signals.<strategy>.<exchange>.<symbol> (pipeline.SignalSubject).
//
// Bots receive them with a Client, which checks each user's Entitlement and charges a
// per-user rate limit before delivery:
//
//	c, err := signals.NewClient(nc, signals.ClientConfig{Entitlements: store, Limiter: lim}, reg)
//	err = c.Subscribe(ctx, signals.SubscribeOptions{User: "alice", Strategies: []string{"rsi"},
//		From: signals.FromLast}, func(ctx context.Context, s market.Signal) error { ... })
//
// NATSPermissions turns entitlements into nats-server users whose permissions let them
// create consumers only on the subjects they are entitled to, so the server enforces the
// entitlements too. Tail prints signals as JSON lines.
package signals
