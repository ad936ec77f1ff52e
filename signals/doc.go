// Package signals turns analysis results into trading signals and delivers them to bots
// over NATS JetStream.
//
// A Role subscribes to analysis updates (core NATS ts.analysis.>), runs each applicable
// Strategy's rules — RSI crossing its thresholds, MACD crossing its signal line, the
// close breaking out of the Bollinger Bands, a fast moving average crossing a slow one —
// against the previous update of the same market and interval (kept in Redis with a
// TTL, so a restarted role neither misses nor repeats a cross) and publishes the
// market.Signal they raise with a Distributor:
//
//	strategies, err := signals.LoadStrategies("strategies.yaml") // errors give file:line
//	dist, err := signals.NewDistributor(ctx, nc, signals.DistributorConfig{}, log, reg)
//	role, err := signals.NewRole(nc, rdb, dist, marketStore, signals.RoleConfig{Strategies: strategies}, log, reg)
//	err = role.Run(ctx)
//
// The Distributor creates or updates the stream (subjects ts.signals.>, limits
// retention) and publishes asynchronously, waiting for every ack and retrying with the
// same Nats-Msg-Id — the signal's deterministic id — so that a broker restart neither
// loses nor duplicates a signal. Signals are published on
// ts.signals.<strategy>.<exchange>.<symbol>.
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
