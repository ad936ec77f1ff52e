package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tickstash/tickstash/market"
)

// GapRepairer fills trade gaps from the exchanges' REST history: the gaps sources
// report (KindGap), and those a restart leaves (the first trade id of a market after a
// resume is not the one after the last id stored). The history package's Repairer
// implements it (cmd wires the two together).
type GapRepairer interface {
	// FetchGap returns the trades missing in g, in exchange order. Errors that say why
	// the gap cannot be filled are *GapError.
	FetchGap(ctx context.Context, g Gap) ([]market.Trade, error)
	// RecomputeCandles rebuilds the candles of ivs over the buckets that [from, to)
	// touches from the market's stored trades merged with extra, stores those that
	// are closed, and returns them.
	RecomputeCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval,
		from, to time.Time, extra []market.Trade) ([]market.Candle, error)
}

// GapError says why a gap could not be repaired. Reason is a short label for
// tickstash_ingest_gaps_unrepairable_total{reason}: the repairer's own (the history
// package's no_venue, unsupported, request, decode, incomplete) or the ingester's
// (ReasonOverloaded, ReasonRecompute).
type GapError struct {
	Reason string
	Err    error
}

func (e *GapError) Error() string { return fmt.Sprintf("gap unrepairable (%s): %v", e.Reason, e.Err) }

// Unwrap returns the cause.
func (e *GapError) Unwrap() error { return e.Err }

// Reasons a gap is unrepairable that the ingester itself decides.
const (
	// ReasonOverloaded: the repair queue was full (GapRepairConfig.Queue).
	ReasonOverloaded = "overloaded"
	// ReasonRecompute: rebuilding the candles from Redis failed.
	ReasonRecompute = "recompute"
	// ReasonOther: the repairer failed without a reason of its own, or found none of
	// the missing trades.
	ReasonOther = "other"
	// ReasonShutdown: the ingester stopped before the gap's candles closed.
	ReasonShutdown = "shutdown"
	// ReasonTooLarge: more trades are missing than GapRepairConfig.MaxMissing.
	ReasonTooLarge = "too_large"
)

// GapRepairConfig configures gap repair. Every zero value means the documented default.
type GapRepairConfig struct {
	// Repairer fetches missing trades and rebuilds candles; nil means gaps are only
	// counted and logged.
	Repairer GapRepairer
	// Workers is how many gaps are fetched at once, and how many rebuilds of their
	// candles run at once; 0 means 2.
	Workers int
	// Queue is how many gaps may wait for a worker; a gap reported while it is full
	// is counted unrepairable (ReasonOverloaded). 0 means 64.
	Queue int
	// MaxMissing bounds the trades one gap may miss: a larger gap (hours of outage)
	// is counted unrepairable (ReasonTooLarge) rather than fetched a thousand trades
	// a request; 0 means 100 000.
	MaxMissing int64
}

// gapFetched is a gap whose missing trades came back, on its way to the router.
type gapFetched struct {
	gap      Gap
	detected time.Time
	trades   []market.Trade
}

// pendingRepair is a fetched gap waiting until every candle its trades fall in has
// closed: then its candles are rebuilt after the market's writes so far (by the
// writer of its shard, in order).
type pendingRepair struct {
	gapFetched
	from, to time.Time // the span of the trades, [from, to)
}

// gapReport is a gap as the router hands it to the repair workers.
type gapReport struct {
	gap      Gap
	detected time.Time
}

type repairMetrics struct {
	repairs      *prometheus.CounterVec
	unrepairable *prometheus.CounterVec
	lag          prometheus.Histogram
	trades       prometheus.Counter
}

func newRepairMetrics(reg prometheus.Registerer) *repairMetrics {
	f := promauto.With(reg)
	m := &repairMetrics{
		repairs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_gap_repairs_total",
			Help: "Trade gaps handled by gap repair, by result: repaired (candles rebuilt) or unrepairable.",
		}, []string{"result"}),
		unrepairable: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_gaps_unrepairable_total",
			Help: "Trade gaps that gap repair could not fill, by reason.",
		}, []string{"reason"}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "tickstash_ingest_gap_repair_lag_seconds",
			Help:    "Time from a trade gap's detection to its candles rebuilt (it waits for them to close).",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}),
		trades: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_gap_trades_repaired_total",
			Help: "Missing trades fetched by gap repair and folded into rebuilt candles.",
		}),
	}
	m.repairs.WithLabelValues("repaired")
	m.repairs.WithLabelValues("unrepairable")
	return m
}

func (m *repairMetrics) fail(reason string) {
	m.repairs.WithLabelValues("unrepairable").Inc()
	m.unrepairable.WithLabelValues(reason).Inc()
}

// reasonOf is the label of a repair error.
func reasonOf(err error) string {
	var ge *GapError
	if errors.As(err, &ge) && ge.Reason != "" {
		return ge.Reason
	}
	return ReasonOther
}

// repairWorker fetches the missing trades of gaps and hands them to the router, until
// ctx ends.
func (g *Ingester) repairWorker(ctx context.Context, gaps <-chan gapReport, fetched chan<- gapFetched) {
	rp := g.cfg.GapRepair.Repairer
	for {
		var rep gapReport
		select {
		case rep = <-gaps:
		case <-ctx.Done():
			return
		}
		ts, err := rp.FetchGap(ctx, rep.gap)
		if err != nil {
			var ge *GapError
			if ctx.Err() != nil && !errors.As(err, &ge) {
				return // stopped, not a verdict on the gap
			}
			g.rm.fail(reasonOf(err))
			g.log.Warn("trade gap not repaired: its candles stay short of the missing trades",
				"exchange", rep.gap.Exchange, "symbol", rep.gap.Symbol, "from_id", rep.gap.FromID, "to_id", rep.gap.ToID,
				"reason", reasonOf(err), "err", err)
			continue
		}
		ts = withinGap(ts, rep.gap)
		if len(ts) == 0 {
			g.rm.fail(ReasonOther)
			g.log.Warn("trade gap not repaired: the exchange returned none of the missing trades",
				"exchange", rep.gap.Exchange, "symbol", rep.gap.Symbol, "from_id", rep.gap.FromID, "to_id", rep.gap.ToID)
			continue
		}
		select {
		case fetched <- gapFetched{gap: rep.gap, detected: rep.detected, trades: ts}:
		case <-ctx.Done():
			return
		}
	}
}

// withinGap keeps the trades of g's market whose numeric ids lie in g's id range
// (all of them when the ids are not numeric): a venue paging by time returns the
// neighbours too, which the feed delivered already.
func withinGap(ts []market.Trade, g Gap) []market.Trade {
	lo, err1 := strconv.ParseInt(g.FromID, 10, 64)
	hi, err2 := strconv.ParseInt(g.ToID, 10, 64)
	out := ts[:0]
	for _, t := range ts {
		if t.Exchange != g.Exchange || t.Symbol != g.Symbol {
			continue
		}
		if err1 == nil && err2 == nil {
			id, err := strconv.ParseInt(t.ID, 10, 64)
			if err != nil || id < lo || id > hi {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// repair rebuilds the candles of a fetched gap, and announces them to the sink so
// their analysis runs again. The writer of the market's shard starts it once the
// market's writes before it are stored.
func (g *Ingester) repair(ctx context.Context, p *pendingRepair) {
	rp := g.cfg.GapRepair.Repairer
	cs, err := rp.RecomputeCandles(ctx, p.gap.Exchange, p.gap.Symbol, g.cfg.Aggregator.Intervals, p.from, p.to, p.trades)
	if err != nil {
		g.rm.fail(ReasonRecompute)
		g.log.Warn("trade gap not repaired: rebuilding its candles failed",
			"exchange", p.gap.Exchange, "symbol", p.gap.Symbol, "from_id", p.gap.FromID, "to_id", p.gap.ToID, "err", err)
		return
	}
	g.rm.repairs.WithLabelValues("repaired").Inc()
	g.rm.trades.Add(float64(len(p.trades)))
	g.rm.lag.Observe(g.cfg.Now().Sub(p.detected).Seconds())
	g.log.Info("trade gap repaired", "exchange", p.gap.Exchange, "symbol", p.gap.Symbol,
		"from_id", p.gap.FromID, "to_id", p.gap.ToID, "trades", len(p.trades), "candles", len(cs))
	if g.sink == nil {
		return
	}
	for _, c := range cs {
		if err := g.sink.CandleClosed(ctx, c); err != nil {
			g.m.sinkErrors.Inc()
			g.log.Warn("candle-closed event of a repaired candle failed", "exchange", c.Exchange, "symbol", c.Symbol,
				"interval", c.Interval, "open_time", c.OpenTime, "err", err)
		}
	}
}
