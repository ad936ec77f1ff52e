package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// gapRepairer is history's Repairer as ingest's GapRepairer: ingest and history do not
// import each other, so the wiring lives here.
type gapRepairer struct{ r *history.Repairer }

var _ ingest.GapRepairer = gapRepairer{}

// newGapRepairer returns the gap repairer of live feeds: Binance and Binance.US (trade
// ids: historicalTrades, or aggTrades with aggIDs), Coinbase (through the Exchange API,
// whose trade ids Advanced Trade shares) and Kraken (Trades, by time).
func newGapRepairer(vs *venues, store history.TradeStore, aggIDs bool) (gapRepairer, error) {
	vs.aggIDs = aggIDs
	var list []history.Venue
	for _, name := range []string{"binance", "binanceus", "coinbase-exchange", "kraken"} {
		v, err := vs.get(name)
		if err != nil {
			return gapRepairer{}, err
		}
		list = append(list, v)
	}
	return gapRepairer{history.NewRepairer(list, store, vs.m, history.RepairConfig{Log: vs.log})}, nil
}

// FetchGap fetches the trades missing in g: by id where the venue pages by id, by the
// time between the trades on both sides of the gap otherwise.
func (a gapRepairer) FetchGap(ctx context.Context, g ingest.Gap) ([]market.Trade, error) {
	hg := history.Gap{Exchange: g.Exchange, Symbol: g.Symbol, FromID: g.FromID, ToID: g.ToID}
	if !g.LastTime.IsZero() && !g.Time.Before(g.LastTime) {
		hg.From, hg.To = g.LastTime, g.Time.Add(time.Millisecond)
	}
	ts, err := a.r.FetchGap(ctx, hg, nil)
	var ue *history.UnrepairableError
	if errors.As(err, &ue) {
		return ts, &ingest.GapError{Reason: ue.Reason, Err: err}
	}
	return ts, err
}

// RecomputeCandles rebuilds the closed candles around a repaired gap (history's
// RebuildCandles).
func (a gapRepairer) RecomputeCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval,
	from, to time.Time, extra []market.Trade) ([]market.Candle, error) {
	return a.r.RebuildCandles(ctx, ex, sym, ivs, from, to, extra)
}

// liveSpecs returns the --source specs of live exchange feeds (not synthetic, not
// replays): the ones with REST history.
func liveSpecs(specs []string) []string {
	var out []string
	for _, s := range specs {
		kind, _, _ := strings.Cut(strings.TrimSpace(s), ":")
		switch strings.ToLower(kind) {
		case "synthetic", "replay", "":
		default:
			out = append(out, s)
		}
	}
	return out
}

// startupBackfill fetches, for every live market and interval, the newest n candles
// from the exchange's REST history, then queues one analysis job per market and
// interval (when queue is not nil). Failures are logged, never fatal: live ingest goes
// on without the history. It returns when done or when ctx ends.
func startupBackfill(ctx context.Context, p *process, vs *venues, specs []string, ivs []market.Interval, n int,
	storeCfg cache.MarketConfig, queue *analysis.Queue) {
	log := p.log.With("role", "ingest", "task", "backfill-on-start")
	markets, err := parseHistoryMarkets(specs, vs.get)
	if err != nil {
		log.Warn("backfill on start skipped", "err", err)
		return
	}
	store := cache.NewMarketStore(p.rdb, storeCfg, nil)
	bf := history.NewBackfiller(store, p.rdb, vs.m, history.BackfillConfig{Log: log})
	start := time.Now()
	var stored int
	for _, m := range markets {
		for _, iv := range ivs {
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			job := history.Job{Venue: m.venue, Symbol: m.symbol, Interval: iv,
				From: now.Add(-time.Duration(n) * iv.Duration()), To: now}
			if _, err := history.SourceInterval(m.venue, iv); err != nil {
				job.FromTrades = m.venue.Name() == "binance" || m.venue.Name() == "binanceus" || m.venue.Name() == "kraken"
				if !job.FromTrades {
					log.Warn("backfill on start: interval not available", "venue", m.venue.Name(), "symbol", m.symbol, "interval", iv, "err", err)
					continue
				}
			}
			res, err := bf.Run(ctx, job)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("backfill on start failed: the analysis of this market has only live candles until enough have closed",
					"venue", m.venue.Name(), "symbol", m.symbol, "interval", iv, "err", err)
				continue
			}
			stored += res.Stored
			log.Info("backfilled", "venue", m.venue.Name(), "symbol", m.symbol, "interval", iv,
				"fetched", res.Fetched, "stored", res.Stored, "present", res.Present)
			if queue == nil {
				continue
			}
			spec := analysis.JobSpec{Exchange: m.venue.Exchange(), Symbol: m.symbol, Interval: iv, Watermark: iv.Align(now).Add(-iv.Duration())}
			if _, err := queue.Enqueue(ctx, spec); err != nil && ctx.Err() == nil {
				log.Warn("backfill on start: queueing the analysis job failed", "symbol", m.symbol, "interval", iv, "err", err)
			}
		}
	}
	log.Info("backfill on start done", "markets", len(markets), "intervals", len(ivs), "stored", stored, "took", time.Since(start).Round(time.Millisecond))
}
