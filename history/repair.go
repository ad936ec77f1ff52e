package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// Reasons a gap is unrepairable (tickstash_history_gaps_unrepairable_total{reason}).
const (
	ReasonNoVenue     = "no_venue"    // no venue configured for the exchange
	ReasonUnsupported = "unsupported" // the venue's API cannot page this kind of gap
	ReasonRequest     = "request"     // the venue failed or refused (after retries)
	ReasonDecode      = "decode"      // the venue's answer had an unexpected shape
	ReasonIncomplete  = "incomplete"  // fewer trades came back than the ids say are missing
)

// TradeStore is what candle repair needs of the market store (*cache.MarketStore).
type TradeStore interface {
	Write(ctx context.Context, b *cache.Batch) (cache.WriteStats, error)
	TradesBetween(ctx context.Context, ex market.Exchange, sym market.Symbol, from, to time.Time, limit int) ([]market.Trade, error)
}

var _ TradeStore = (*cache.MarketStore)(nil)

// RepairConfig configures a Repairer. Every zero value means the documented default.
type RepairConfig struct {
	// MaxTrades bounds the trades read back from a stream to recompute candles; 0 means
	// 1 000 000. A range holding more fails rather than building partial candles.
	MaxTrades int
	// Grace is how long after a bucket's end Repair waits before rewriting its candle,
	// so that the live aggregator has closed it first (its closed candle would
	// otherwise replace the repaired one). Set it above ingest's grace; 0 means 1 minute.
	Grace time.Duration
	// Now is the clock for the repair lag and the waits; nil means time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done; nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives unrepairable gaps; nil discards them.
	Log *slog.Logger
}

// Repairer fills gaps in trade feeds from the venues' REST trade history and
// recomputes the closed candles the gap spoiled.
type Repairer struct {
	venues map[market.Exchange]Venue
	store  TradeStore
	m      *Metrics
	cfg    RepairConfig
}

// NewRepairer returns a Repairer using venues, one per exchange (a later one for the
// same exchange replaces an earlier one; for Coinbase pass the "coinbase-exchange"
// venue). store may be nil when only FetchGap is used.
func NewRepairer(venues []Venue, store TradeStore, m *Metrics, cfg RepairConfig) *Repairer {
	if cfg.MaxTrades <= 0 {
		cfg.MaxTrades = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Minute
	}
	if cfg.Sleep == nil {
		cfg.Sleep = backoff.Sleep
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Repairer{venues: make(map[market.Exchange]Venue), store: store, m: m, cfg: cfg}
	for _, v := range venues {
		r.venues[v.Exchange()] = v
	}
	return r
}

// UnrepairableError says why a gap could not be filled; Reason is one of the Reason
// constants.
type UnrepairableError struct {
	Gap    Gap
	Reason string
	Err    error
}

func (e *UnrepairableError) Error() string {
	return fmt.Sprintf("history: gap %s:%s ids %s..%s times %s..%s unrepairable (%s): %v", e.Gap.Exchange, e.Gap.Symbol,
		e.Gap.FromID, e.Gap.ToID, market.FormatTime(e.Gap.From), market.FormatTime(e.Gap.To), e.Reason, e.Err)
}

func (e *UnrepairableError) Unwrap() error { return e.Err }

// FetchGap returns the trades missing in gap, fetched from the exchange's venue: in
// exchange order, each once, without those known reports as already held (known may be
// nil). An id gap whose ids are not all returned fails with reason ReasonIncomplete but
// still returns what was found. Errors are *UnrepairableError, counted by reason;
// ctx's error is returned as is.
func (r *Repairer) FetchGap(ctx context.Context, gap Gap, known func(id string) bool) ([]market.Trade, error) {
	ex := gap.Exchange
	fail := func(reason string, err error) error {
		r.m.gapsUnrepairable.WithLabelValues(string(ex), reason).Inc()
		e := &UnrepairableError{Gap: gap, Reason: reason, Err: err}
		r.cfg.Log.Warn("history: gap not repaired", "err", e)
		return e
	}
	v, ok := r.venues[ex]
	if !ok {
		return nil, fail(ReasonNoVenue, fmt.Errorf("no REST venue configured for %s", ex))
	}
	ts, err := v.Trades(ctx, gap.Symbol, gap)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case errors.Is(err, ErrUnsupported):
			return nil, fail(ReasonUnsupported, err)
		case errors.Is(err, ErrDecode):
			return nil, fail(ReasonDecode, err)
		default:
			return nil, fail(ReasonRequest, err)
		}
	}
	out := make([]market.Trade, 0, len(ts))
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t.ID != "" {
			if seen[t.ID] || (known != nil && known(t.ID)) {
				continue
			}
			seen[t.ID] = true
		}
		t.Exchange, t.Symbol = gap.Exchange, gap.Symbol
		out = append(out, t)
	}
	SortTrades(out)
	r.m.tradesRepaired.WithLabelValues(string(ex)).Add(float64(len(out)))
	if !gap.Detected.IsZero() {
		r.m.repairLag.WithLabelValues(string(ex)).Observe(r.cfg.Now().Sub(gap.Detected).Seconds())
	}
	if lo, err1 := strconv.ParseInt(gap.FromID, 10, 64); err1 == nil {
		if hi, err2 := strconv.ParseInt(gap.ToID, 10, 64); err2 == nil && hi >= lo {
			have := int64(len(out))
			if known != nil {
				for id := lo; id <= hi && id-lo < 1_000_000; id++ {
					if known(strconv.FormatInt(id, 10)) && !seen[strconv.FormatInt(id, 10)] {
						have++
					}
				}
			}
			if have < hi-lo+1 {
				return out, fail(ReasonIncomplete, fmt.Errorf("%d of %d missing trades found", have, hi-lo+1))
			}
		}
	}
	return out, nil
}

// RecomputeCandles rebuilds the closed candles of each interval over the buckets that
// [from, to) touches, from the market's stored trade stream merged with extra (the
// trades FetchGap returned, which the stream cannot take after later trades), and
// upserts those already over by the clock (closed, source "repair"); a bucket still
// open stays the live aggregator's. Buckets whose trades have left the stream's
// retention would be rebuilt from what remains: call it while the gap is recent. It
// returns how many candles were written.
func (r *Repairer) RecomputeCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval, from, to time.Time, extra []market.Trade) (int, error) {
	_, n, err := r.rebuild(ctx, ex, sym, ivs, from, to, extra)
	return n, err
}

// RebuildCandles is RecomputeCandles returning the candles it wrote (for their
// analysis to run again).
func (r *Repairer) RebuildCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval, from, to time.Time, extra []market.Trade) ([]market.Candle, error) {
	cs, _, err := r.rebuild(ctx, ex, sym, ivs, from, to, extra)
	return cs, err
}

func (r *Repairer) rebuild(ctx context.Context, ex market.Exchange, sym market.Symbol, ivs []market.Interval, from, to time.Time, extra []market.Trade) ([]market.Candle, int, error) {
	if r.store == nil {
		return nil, 0, errors.New("history: recompute candles: the Repairer has no store")
	}
	if len(ivs) == 0 {
		return nil, 0, nil
	}
	lo, hi := from, to
	for _, iv := range ivs {
		if err := iv.Validate(); err != nil {
			return nil, 0, err
		}
		if a := iv.Align(from); a.Before(lo) {
			lo = a
		}
		if e := iv.Align(to.Add(-1)).Add(iv.Duration()); e.After(hi) {
			hi = e
		}
	}
	stream, err := r.store.TradesBetween(ctx, ex, sym, lo, hi, r.cfg.MaxTrades+1)
	if err != nil {
		return nil, 0, fmt.Errorf("history: recompute candles: %w", err)
	}
	if len(stream) > r.cfg.MaxTrades {
		return nil, 0, fmt.Errorf("history: recompute candles of %s:%s %s..%s: more than %d trades; repair a shorter range or raise RepairConfig.MaxTrades",
			ex, sym, market.FormatTime(lo), market.FormatTime(hi), r.cfg.MaxTrades)
	}
	all := MergeTrades(stream, extra)
	var b cache.Batch
	now := r.cfg.Now()
	for _, iv := range ivs {
		for _, c := range CandlesFromTrades(all, iv, iv.Align(from), iv.Align(to.Add(-1)).Add(iv.Duration()), SourceRepair) {
			if !c.CloseTime().After(now) { // a bucket still open is the live aggregator's
				b.Candles = append(b.Candles, c)
			}
		}
	}
	if len(b.Candles) == 0 {
		return nil, 0, nil
	}
	st, err := r.store.Write(ctx, &b)
	if err != nil {
		return nil, 0, fmt.Errorf("history: recompute candles: %w", err)
	}
	return b.Candles, st.Candles, nil
}

// RepairResult says what Repair did.
type RepairResult struct {
	// Trades are the missing trades found, in exchange order.
	Trades []market.Trade
	// Candles is how many candles were rewritten.
	Candles int
}

// Repair is the whole gap repair, for ingest's gap hook: it fetches the gap's trades
// (FetchGap, with known), waits until every bucket of ivs that they fall in has ended
// plus Grace, then recomputes those buckets' candles from the trade stream and the
// fetched trades (RecomputeCandles). Run it in a goroutine of its own: the wait lasts
// up to the longest interval. A gap whose trades cannot all be found returns the
// *UnrepairableError of FetchGap and rewrites nothing: candles built from a partial
// repair would still be wrong, only differently.
func (r *Repairer) Repair(ctx context.Context, gap Gap, ivs []market.Interval, known func(id string) bool) (RepairResult, error) {
	ts, err := r.FetchGap(ctx, gap, known)
	res := RepairResult{Trades: ts}
	if err != nil || len(ts) == 0 {
		return res, err
	}
	from, to := ts[0].Time, ts[len(ts)-1].Time.Add(time.Nanosecond)
	var due time.Time
	for _, iv := range ivs {
		if end := iv.Align(to.Add(-1)).Add(iv.Duration()).Add(r.cfg.Grace); end.After(due) {
			due = end
		}
	}
	if wait := due.Sub(r.cfg.Now()); wait > 0 {
		if err := r.cfg.Sleep(ctx, wait); err != nil {
			return res, err
		}
	}
	res.Candles, err = r.RecomputeCandles(ctx, gap.Exchange, gap.Symbol, ivs, from, to, ts)
	return res, err
}
