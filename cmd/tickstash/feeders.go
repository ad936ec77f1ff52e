package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/leaderboard"
	"github.com/tickstash/tickstash/market"
)

// boards is the process's one leaderboard store: its metrics register once per
// registry, so every role that needs leaderboards (the feeders, the gateway) shares it
// through process.leaderboards.
type boards struct {
	once  sync.Once
	store *leaderboard.Store
	err   error
}

// leaderboards returns the process's leaderboard store, creating it on first use.
func (p *process) leaderboards(prefix string) (*leaderboard.Store, error) {
	p.boards.once.Do(func() {
		p.boards.store, p.boards.err = leaderboard.NewStore(p.rdb, leaderboard.Config{Prefix: prefix}, p.reg)
	})
	return p.boards.store, p.boards.err
}

// moversFeeder keeps the top-movers and volume-leader boards from closed candles; it is
// a candle sink of the ingest role.
func moversFeeder(p *process, prefix string, candles *cache.MarketStore) (*leaderboard.MoversFeeder, error) {
	lb, err := p.leaderboards(prefix)
	if err != nil {
		return nil, err
	}
	return leaderboard.NewMoversFeeder(lb, candles, leaderboard.MoversConfig{}), nil
}

// strategyFeeder returns a role that keeps the strategy-performance boards: each signal
// published on <subject prefix>.> opens a paper position that the strategy's opposite signal
// closes. It listens on core NATS: signals missed while it is disconnected leave their
// positions to the next signal (the tracker ignores repeats and out-of-order ones).
func strategyFeeder(p *process, prefix, subjectPrefix string) (func(context.Context) error, error) {
	lb, err := p.leaderboards(prefix)
	if err != nil {
		return nil, err
	}
	tracker := leaderboard.NewStrategyTracker(lb, leaderboard.StrategyConfig{})
	log := p.log.With("role", "leaderboard")
	return func(ctx context.Context) error {
		msgs := make(chan *nats.Msg, 1024)
		sub, err := p.nc.ChanQueueSubscribe(subjectPrefix+".>", "tickstash-leaderboard", msgs)
		if err != nil {
			return fmt.Errorf("subscribe to signals: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		for {
			select {
			case <-ctx.Done():
				return nil
			case m := <-msgs:
				var s market.Signal
				if err := json.Unmarshal(m.Data, &s); err != nil {
					log.Debug("not a signal", "subject", m.Subject, "err", err)
					continue
				}
				if _, err := tracker.RecordSignal(ctx, s.Strategy, s.Exchange, s.Symbol, s.Side, s.Price, s.CandleTime); err != nil {
					log.Warn("strategy board update failed", "strategy", s.Strategy, "symbol", s.Symbol, "err", err)
				}
			}
		}
	}, nil
}
