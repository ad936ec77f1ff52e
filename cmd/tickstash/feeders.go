package main

import (
	"context"
	"sync"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/leaderboard"
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

// strategyFeeder returns the role that keeps the strategy-performance boards from the
// signals published on <subject prefix>.> (leaderboard.StrategyFeed).
func strategyFeeder(p *process, prefix, subjectPrefix string) (func(context.Context) error, error) {
	lb, err := p.leaderboards(prefix)
	if err != nil {
		return nil, err
	}
	tracker := leaderboard.NewStrategyTracker(lb, leaderboard.StrategyConfig{})
	feed := leaderboard.NewStrategyFeed(p.nc, tracker, leaderboard.StrategyFeedConfig{SubjectPrefix: subjectPrefix}, p.log.With("role", "leaderboard"))
	return feed.Run, nil
}
