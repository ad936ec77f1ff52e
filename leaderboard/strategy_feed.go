package leaderboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/market"
)

// StrategyFeedConfig configures a StrategyFeed. Every zero value means the documented
// default.
type StrategyFeedConfig struct {
	// SubjectPrefix is where signals are published: the feed listens on <prefix>.>.
	// Required: the signal distributor's subject prefix (signals.DefaultSubjectPrefix).
	SubjectPrefix string
	// Queue is the NATS queue group, so that of several processes one records each
	// signal. "" means "tickstash-leaderboard".
	Queue string
	// Buffer is how many signals wait for the tracker before NATS drops more (a slow
	// consumer). 0 means 1024.
	Buffer int
}

// StrategyFeed keeps the strategy-performance boards from published signals: each
// signal (a market.Signal as JSON) opens a paper position that the strategy's opposite
// signal closes (StrategyTracker). It listens on core NATS: signals missed while it is
// disconnected leave their positions to the next signal (the tracker ignores repeats and
// out-of-order ones).
type StrategyFeed struct {
	nc      *nats.Conn
	tracker *StrategyTracker
	cfg     StrategyFeedConfig
	log     *slog.Logger
}

// NewStrategyFeed returns a feed of tracker from nc; log may be nil (no logging).
func NewStrategyFeed(nc *nats.Conn, tracker *StrategyTracker, cfg StrategyFeedConfig, log *slog.Logger) *StrategyFeed {
	if cfg.Queue == "" {
		cfg.Queue = "tickstash-leaderboard"
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StrategyFeed{nc: nc, tracker: tracker, cfg: cfg, log: log}
}

// Run records signals until ctx ends, then returns nil. It returns an error when it
// cannot subscribe. A message that is not a signal, or a signal the tracker refuses, is
// logged and skipped.
func (f *StrategyFeed) Run(ctx context.Context) error {
	if f.cfg.SubjectPrefix == "" {
		return fmt.Errorf("leaderboard: strategy feed: no subject prefix")
	}
	msgs := make(chan *nats.Msg, f.cfg.Buffer)
	sub, err := f.nc.ChanQueueSubscribe(f.cfg.SubjectPrefix+".>", f.cfg.Queue, msgs)
	if err != nil {
		return fmt.Errorf("leaderboard: subscribe to signals: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			var s market.Signal
			if err := json.Unmarshal(m.Data, &s); err != nil {
				f.log.Debug("not a signal", "subject", m.Subject, "err", err)
				continue
			}
			if _, err := f.tracker.RecordSignal(ctx, s.Strategy, s.Exchange, s.Symbol, s.Side, s.Price, s.CandleTime); err != nil {
				f.log.Warn("strategy board update failed", "strategy", s.Strategy, "symbol", s.Symbol, "err", err)
			}
		}
	}
}
