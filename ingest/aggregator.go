package ingest

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// EmptyMode says what the aggregator does with an interval in which no trade happened.
type EmptyMode uint8

const (
	// EmptySkip leaves quiet intervals out: the next candle opens with the next trade.
	EmptySkip EmptyMode = iota
	// EmptyFlat emits a candle for each quiet interval, open = high = low = close =
	// the previous close, no volume, no trades.
	EmptyFlat
)

// ParseEmptyMode parses "skip" or "flat".
func ParseEmptyMode(s string) (EmptyMode, error) {
	switch s {
	case "skip", "":
		return EmptySkip, nil
	case "flat":
		return EmptyFlat, nil
	}
	return EmptySkip, fmt.Errorf("ingest: empty-interval mode %q: want skip or flat", s)
}

// String returns "skip" or "flat".
func (m EmptyMode) String() string {
	if m == EmptyFlat {
		return "flat"
	}
	return "skip"
}

// AggregatorConfig configures an Aggregator. Zero values mean the documented defaults.
type AggregatorConfig struct {
	// Intervals to build candles for; nil means 1m only.
	Intervals []market.Interval
	// Grace is how long after a candle's end the watermark waits for its last trades
	// before Advance closes it. 0 means 2s.
	Grace time.Duration
	// Empty says whether quiet intervals are skipped (default) or carried flat.
	Empty EmptyMode
	// MaxFlat caps how many flat candles one gap produces per series; a longer quiet
	// spell (say, a replay of old data while the clock is now) is skipped past and
	// counted in Stats.FlatSkipped. 0 means 1440.
	MaxFlat int
}

// AggregatorStats counts what the aggregator did, per interval index of Intervals.
type AggregatorStats struct {
	// Late counts trades dropped because their candle was already closed.
	Late []int64
	// FlatSkipped counts flat candles not emitted because a gap exceeded MaxFlat.
	FlatSkipped []int64
	// Repeats counts trades skipped because their numeric id was not above the last
	// one aggregated for their market (a feed's overlap after a reconnect, a replay).
	Repeats int64
}

// Aggregator turns trades into candles of several intervals at once, following the rules
// in DESIGN.md: buckets by exchange trade time aligned to the Unix epoch, [open,
// open+interval); a candle closes when a trade of a later bucket arrives or when the
// watermark (Advance's now minus the grace period) passes its end; a trade for a candle
// that is already closed is late: counted and dropped. Sums are exact decimals.
//
// An Aggregator is not safe for concurrent use; one goroutine owns it.
type Aggregator struct {
	cfg    AggregatorConfig
	series map[seriesKey]*symbolSeries
	stats  AggregatorStats
}

type seriesKey struct {
	ex  market.Exchange
	sym market.Symbol
}

// symbolSeries holds one market's state for every configured interval, index-aligned
// with cfg.Intervals.
type symbolSeries struct {
	iv []intervalState
	// lastID is the highest numeric trade id aggregated, valid when hasLastID.
	lastID    uint64
	hasLastID bool
}

type intervalState struct {
	cur  market.Candle // the forming candle, valid when open
	open bool
	// dirty is set when cur changed since the last Forming call.
	dirty bool
	// closedUntil is the end of the last closed candle; zero before the first.
	closedUntil time.Time
	// lastClose is the close of the last closed candle, for flat candles.
	last market.Candle
	// vol and quote hold what was added to cur's Volume and QuoteVolume since they were
	// last folded in (see fixedSum); cur is read only through formed.
	vol, quote fixedSum
}

// formed folds the pending sums into the forming candle and returns it.
func (st *intervalState) formed() *market.Candle {
	st.cur.Volume = st.vol.fold(st.cur.Volume)
	st.cur.QuoteVolume = st.quote.fold(st.cur.QuoteVolume)
	return &st.cur
}

// NewAggregator returns an aggregator for cfg. It panics on an interval that is not one
// of market.Intervals, a programming error that ParseInterval prevents.
func NewAggregator(cfg AggregatorConfig) *Aggregator {
	if len(cfg.Intervals) == 0 {
		cfg.Intervals = []market.Interval{market.Interval1m}
	}
	for _, iv := range cfg.Intervals {
		if err := iv.Validate(); err != nil {
			panic(err)
		}
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Second
	}
	if cfg.MaxFlat <= 0 {
		cfg.MaxFlat = 1440
	}
	return &Aggregator{
		cfg:    cfg,
		series: make(map[seriesKey]*symbolSeries),
		stats: AggregatorStats{
			Late:        make([]int64, len(cfg.Intervals)),
			FlatSkipped: make([]int64, len(cfg.Intervals)),
		},
	}
}

// Intervals returns the intervals the aggregator builds, in the order stats use.
func (a *Aggregator) Intervals() []market.Interval { return a.cfg.Intervals }

// Stats returns the counters so far. The slices are the aggregator's own: read them
// from the owning goroutine.
func (a *Aggregator) Stats() AggregatorStats { return a.stats }

// Known reports whether the aggregator holds state for a market: it has seen one of its
// trades or was resumed for it.
func (a *Aggregator) Known(ex market.Exchange, sym market.Symbol) bool {
	_, ok := a.series[seriesKey{ex, sym}]
	return ok
}

// ClosedBefore returns the time before which every candle of a market's i-th interval
// (index into Intervals) is closed: the forming candle's open time, or the end of the
// last closed candle; zero when the market has no candle of it yet.
func (a *Aggregator) ClosedBefore(ex market.Exchange, sym market.Symbol, i int) time.Time {
	s := a.series[seriesKey{ex, sym}]
	if s == nil {
		return time.Time{}
	}
	st := &s.iv[i]
	if st.open {
		return st.cur.OpenTime
	}
	return st.closedUntil
}

// Resume seeds a market the aggregator does not know yet with what a previous run
// stored, so a restart neither truncates the candles in progress nor counts a trade
// twice: lastTradeID is the id of the last trade aggregated ("" if unknown), newest the
// newest stored candle of any of the configured intervals. A forming candle is
// continued; a closed one marks its bucket as done, so its trades are late and, in
// EmptyFlat mode, quiet intervals after it are carried flat. Candles of other markets or
// intervals are ignored.
func (a *Aggregator) Resume(ex market.Exchange, sym market.Symbol, lastTradeID string, newest []market.Candle) {
	k := seriesKey{ex, sym}
	if _, ok := a.series[k]; ok {
		return
	}
	s := &symbolSeries{iv: make([]intervalState, len(a.cfg.Intervals))}
	if id, err := strconv.ParseUint(lastTradeID, 10, 64); err == nil {
		s.lastID, s.hasLastID = id, true
	}
	for _, c := range newest {
		if c.Exchange != ex || c.Symbol != sym {
			continue
		}
		for i, iv := range a.cfg.Intervals {
			if c.Interval != iv {
				continue
			}
			st := &s.iv[i]
			if c.Closed {
				st.last, st.closedUntil = c, c.CloseTime()
			} else {
				st.cur, st.open = c, true
				st.vol, st.quote = fixedSum{}, fixedSum{}
			}
		}
	}
	a.series[k] = s
}

// Add folds a valid trade into every interval's forming candle and appends to dst the
// candles that the trade closed (and flat candles for quiet intervals it skipped over,
// in EmptyFlat mode), oldest first per interval. It returns the extended dst and how
// many intervals dropped the trade as late. A trade whose numeric id is not above the
// last one aggregated for its market is skipped and counted in Stats.Repeats: exchanges
// number a market's trades in increasing order, and this is how a reconnect's overlap
// or a replay is kept out of the candles.
func (a *Aggregator) Add(t *market.Trade, dst []market.Candle) ([]market.Candle, int) {
	k := seriesKey{t.Exchange, t.Symbol}
	s := a.series[k]
	if s == nil {
		s = &symbolSeries{iv: make([]intervalState, len(a.cfg.Intervals))}
		a.series[k] = s
	}
	if id, ok := market.NumericID(t.ID); ok {
		if s.hasLastID && id <= s.lastID {
			a.stats.Repeats++
			return dst, 0
		}
		s.lastID, s.hasLastID = id, true
	}
	late := 0
	// The quantity and the notional as int64 mantissas when they fit (they do for every
	// venue's prices and sizes): added to each interval's sums without allocating.
	qm, qs, qok := market.FixedOf(t.Qty)
	pm, ps, pok := market.FixedOf(t.Price)
	nm, ns, nok := mulFixed(pm, ps, qm, qs)
	nok = nok && pok && qok
	var notional decimal.Decimal // t.Price·t.Qty as a decimal, computed only if needed
	haveNotional := false
	exactNotional := func() decimal.Decimal {
		if !haveNotional {
			notional, haveNotional = t.Price.Mul(t.Qty), true
		}
		return notional
	}
	for i, iv := range a.cfg.Intervals {
		st := &s.iv[i]
		bucket := iv.Align(t.Time)
		switch {
		case st.open && bucket.Equal(st.cur.OpenTime):
			st.cur.AddPrice(t)
			if !qok || !st.vol.add(qm, qs) {
				st.cur.Volume = st.vol.fold(st.cur.Volume).Add(t.Qty)
			}
			if !nok || !st.quote.add(nm, ns) {
				st.cur.QuoteVolume = st.quote.fold(st.cur.QuoteVolume).Add(exactNotional())
			}
			st.dirty = true
			continue
		case st.open && bucket.Before(st.cur.OpenTime),
			!st.open && !st.closedUntil.IsZero() && bucket.Before(st.closedUntil):
			a.stats.Late[i]++
			late++
			continue
		case st.open:
			dst = a.close(i, st, dst)
		}
		dst = a.fillFlat(i, st, bucket, dst)
		st.cur = market.NewCandleNotional(t, iv, exactNotional())
		st.vol, st.quote = fixedSum{}, fixedSum{}
		st.open = true
		st.dirty = true
	}
	return dst, late
}

// close closes st's forming candle and appends it to dst.
func (a *Aggregator) close(i int, st *intervalState, dst []market.Candle) []market.Candle {
	c := st.formed()
	c.Closed = true
	st.last = *c
	st.closedUntil = c.CloseTime()
	st.open = false
	st.dirty = false
	return append(dst, *c)
}

// fillFlat appends, in EmptyFlat mode, flat candles for the quiet buckets between the
// last closed candle and until (exclusive), at most MaxFlat of them: a longer gap's
// older part is skipped.
func (a *Aggregator) fillFlat(i int, st *intervalState, until time.Time, dst []market.Candle) []market.Candle {
	if a.cfg.Empty != EmptyFlat || st.closedUntil.IsZero() || !st.closedUntil.Before(until) {
		return dst
	}
	step := a.cfg.Intervals[i].Duration()
	n := int64(until.Sub(st.closedUntil) / step)
	from := st.closedUntil
	if n > int64(a.cfg.MaxFlat) {
		a.stats.FlatSkipped[i] += n - int64(a.cfg.MaxFlat)
		from = until.Add(-time.Duration(a.cfg.MaxFlat) * step)
	}
	for open := from; open.Before(until); open = open.Add(step) {
		c := market.FlatCandle(&st.last, open)
		c.Closed = true
		dst = append(dst, c)
		st.last = c
	}
	st.closedUntil = until
	return dst
}

// Advance moves the watermark to now minus the grace period: every forming candle that
// ends at or before it closes, and in EmptyFlat mode quiet intervals that end at or
// before it are carried flat. Closed candles are appended to dst in a stable order:
// by exchange, symbol, interval, open time.
func (a *Aggregator) Advance(now time.Time, dst []market.Candle) []market.Candle {
	mark := now.Add(-a.cfg.Grace)
	start := len(dst)
	for _, s := range a.series {
		for i, iv := range a.cfg.Intervals {
			st := &s.iv[i]
			if st.open && !st.cur.CloseTime().After(mark) {
				dst = a.close(i, st, dst)
			}
			if !st.open && a.cfg.Empty == EmptyFlat && !st.closedUntil.IsZero() {
				dst = a.fillFlat(i, st, iv.Align(mark), dst)
			}
		}
	}
	sortCandles(dst[start:])
	return dst
}

// Flush closes every forming candle, as at the end of a finite input, and appends them
// to dst sorted by exchange, symbol, interval and open time.
func (a *Aggregator) Flush(dst []market.Candle) []market.Candle {
	start := len(dst)
	for _, s := range a.series {
		for i := range a.cfg.Intervals {
			if st := &s.iv[i]; st.open {
				dst = a.close(i, st, dst)
			}
		}
	}
	sortCandles(dst[start:])
	return dst
}

// Forming appends to dst the forming candles that changed since the last call, so a
// writer can publish live candles without rewriting quiet ones.
func (a *Aggregator) Forming(dst []market.Candle) []market.Candle {
	for _, s := range a.series {
		for i := range s.iv {
			if st := &s.iv[i]; st.open && st.dirty {
				dst = append(dst, *st.formed())
				st.dirty = false
			}
		}
	}
	return dst
}

func sortCandles(cs []market.Candle) {
	slices.SortFunc(cs, func(x, y market.Candle) int {
		return cmp.Or(
			cmp.Compare(x.Exchange, y.Exchange),
			cmp.Compare(x.Symbol, y.Symbol),
			cmp.Compare(x.Interval, y.Interval),
			x.OpenTime.Compare(y.OpenTime),
		)
	})
}
