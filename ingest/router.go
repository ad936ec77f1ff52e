package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
)

// job is one shard's batch and the closed candles to announce once it is stored.
type job struct {
	batch  cache.Batch
	closed []market.Candle
	// repairs rebuild candles once the batch is written.
	repairs []*pendingRepair
}

// jobPool recycles jobs, and with them their batches' capacity: a writer puts a job back
// once it is done with it (release), the router takes one (newJob) for every batch it
// starts filling.
var jobPool = sync.Pool{New: func() any { return new(job) }}

func newJob() *job { return jobPool.Get().(*job) }

// release empties j and puts it back in the pool. j must not be used afterwards.
func (j *job) release() {
	j.batch.Reset()
	clear(j.closed)
	clear(j.repairs)
	j.closed, j.repairs = j.closed[:0], j.repairs[:0]
	jobPool.Put(j)
}

// router turns events into per-writer batches: it owns the aggregator, the batch being
// filled for each writer, and the watermark. Records of one market always go to the
// same writer (by a hash of exchange and symbol), so each market's writes stay in
// order.
//
// A router is used by one goroutine only: the aggregation loop that Ingester.Run
// starts (router.run). It is the only sender on the writers' queues; Run closes them
// after run returns.
type router struct {
	cfg    *IngesterConfig
	m      *ingestMetrics
	log    *slog.Logger
	seed   maphash.Seed
	state  StateReader // nil: markets start from scratch
	agg    *Aggregator
	queues []chan<- *job
	jobs   []*job // jobs[i] is being filled for queues[i]
	// readCtx bounds resume reads; it is the writers' context, which outlives the
	// role's by the shutdown timeout, like the writes it precedes.
	readCtx context.Context
	closed  []market.Candle // scratch for candles closed by one call
	// watermark is the newest trade time seen, for EventTimeWatermark.
	watermark time.Time
	// seen* are the aggregator's counters already added to the metrics.
	lateSeen, flatSeen []int64
	repeatsSeen        int64
	// Gap repair, when configured: gaps go out to the workers, their trades come back
	// on fetched and wait in pending until their candles have closed.
	gaps    chan<- gapReport
	fetched <-chan gapFetched
	rm      *repairMetrics
	pending []*pendingRepair
	// byExchange caches each exchange's per-trade metric children: looking them up by
	// label values for every trade cost 5 % of the ingest path's CPU.
	byExchange map[market.Exchange]exchangeMetrics
}

// exchangeMetrics are the metric children a trade of one exchange updates.
type exchangeMetrics struct {
	trades    prometheus.Counter
	lastEvent prometheus.Gauge
}

// exchange returns ex's metric children, looked up once.
func (r *router) exchange(ex market.Exchange) exchangeMetrics {
	em, ok := r.byExchange[ex]
	if !ok {
		if r.byExchange == nil {
			r.byExchange = make(map[market.Exchange]exchangeMetrics)
		}
		em = exchangeMetrics{
			trades:    r.m.events.WithLabelValues(string(ex), "trade"),
			lastEvent: r.m.lastEvent.WithLabelValues(string(ex)),
		}
		r.byExchange[ex] = em
	}
	return em
}

func newRouter(cfg *IngesterConfig, m *ingestMetrics, log *slog.Logger, seed maphash.Seed, state StateReader,
	readCtx context.Context, queues []chan<- *job) *router {
	agg := NewAggregator(cfg.Aggregator)
	r := &router{
		cfg: cfg, m: m, log: log, seed: seed, state: state, agg: agg, queues: queues,
		jobs: make([]*job, len(queues)), readCtx: readCtx,
		lateSeen: make([]int64, len(agg.Intervals())), flatSeen: make([]int64, len(agg.Intervals())),
	}
	for i := range r.jobs {
		r.jobs[i] = newJob()
	}
	return r
}

// run routes events until events is closed, flushing every FlushInterval. roleCtx is
// the ingester's context: while it lives the watermark closes candles; once it has
// ended, the candles still forming at the end are written as forming rather than
// closed. When events is closed because the sources ended by themselves (finite
// inputs), the forming candles are closed.
func (r *router) run(roleCtx context.Context, events <-chan Event) {
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				r.flush(roleCtx.Err() == nil)
				for _, p := range r.pending {
					r.rm.fail(ReasonShutdown)
					r.log.Warn("trade gap not repaired: ingest stopped before its candles closed",
						"exchange", p.gap.Exchange, "symbol", p.gap.Symbol, "from_id", p.gap.FromID, "to_id", p.gap.ToID)
				}
				return
			}
			if i := r.add(&ev); i >= 0 {
				switch {
				case r.jobs[i].batch.Len() >= r.cfg.BatchSize:
					r.send(i)
				case len(r.jobs[i].closed) > 0:
					r.sendIfIdle(i)
				}
			}
		case f := <-r.fetched:
			p := &pendingRepair{gapFetched: f, from: f.trades[0].Time, to: f.trades[0].Time}
			for _, t := range f.trades {
				if t.Time.Before(p.from) {
					p.from = t.Time
				}
				if t.Time.After(p.to) {
					p.to = t.Time
				}
			}
			p.to = p.to.Add(time.Nanosecond)
			r.pending = append(r.pending, p)
		case <-tick.C:
			r.flush(false)
		}
	}
}

// releaseRepairs hands each pending repair whose candles have all closed to the writer
// of its market's shard, behind the writes routed so far.
func (r *router) releaseRepairs() {
	keep := r.pending[:0]
	for _, p := range r.pending {
		ready := true
		for i, iv := range r.agg.Intervals() {
			end := iv.Align(p.to.Add(-time.Nanosecond)).Add(iv.Duration())
			if closed := r.agg.ClosedBefore(p.gap.Exchange, p.gap.Symbol, i); closed.Before(end) {
				ready = false
				break
			}
		}
		if !ready {
			keep = append(keep, p)
			continue
		}
		i := r.shard(p.gap.Exchange, p.gap.Symbol)
		r.jobs[i].repairs = append(r.jobs[i].repairs, p)
	}
	clear(r.pending[len(keep):])
	r.pending = keep
}

// add puts one event's record in its shard's batch, and folds trades into candles. It
// returns the shard, or -1 when the event adds no record.
func (r *router) add(ev *Event) int {
	switch ev.Kind() {
	case KindTrade:
		t := ev.Trade()
		if r.state != nil && !r.agg.Known(t.Exchange, t.Symbol) {
			lastID, lastTime := r.resume(t.Exchange, t.Symbol)
			r.restartGap(t, lastID, lastTime)
		}
		em := r.exchange(t.Exchange)
		em.trades.Inc()
		em.lastEvent.Set(float64(t.Time.UnixNano()) / 1e9)
		if t.Time.After(r.watermark) {
			r.watermark = t.Time
		}
		i := r.shard(t.Exchange, t.Symbol)
		r.jobs[i].batch.Trades = append(r.jobs[i].batch.Trades, *t)
		r.closed, _ = r.agg.Add(t, r.closed[:0])
		r.route(r.closed, true)
		return i
	case KindQuote:
		q := ev.Quote()
		r.m.events.WithLabelValues(string(q.Exchange), "quote").Inc()
		i := r.shard(q.Exchange, q.Symbol)
		r.jobs[i].batch.Quotes = append(r.jobs[i].batch.Quotes, *q)
		return i
	case KindCandle:
		c := ev.Candle()
		r.m.events.WithLabelValues(string(c.Exchange), "candle").Inc()
		i := r.shard(c.Exchange, c.Symbol)
		r.jobs[i].batch.Candles = append(r.jobs[i].batch.Candles, *c)
		return i
	case KindGap:
		g := ev.Gap()
		r.m.events.WithLabelValues(string(g.Exchange), "gap").Inc()
		r.log.Warn("trades missed", "exchange", g.Exchange, "symbol", g.Symbol,
			"from_id", g.FromID, "to_id", g.ToID, "missing", g.Missing, "repair", r.gaps != nil)
		r.reportGap(g)
		return -1
	default:
		// Only the zero Event gets here: every other one was built valid.
		r.m.invalid.WithLabelValues(EventKind(0).String()).Inc()
		r.log.Debug("empty event dropped")
		return -1
	}
}

// route adds candles to their market's shard; closed ones are also announced.
func (r *router) route(cs []market.Candle, announce bool) {
	for _, c := range cs {
		i := r.shard(c.Exchange, c.Symbol)
		r.jobs[i].batch.Candles = append(r.jobs[i].batch.Candles, c)
		if announce {
			r.jobs[i].closed = append(r.jobs[i].closed, c)
			r.m.candlesClosed.WithLabelValues(c.Interval.String()).Inc()
		}
	}
}

// flush closes the candles the watermark has passed (all of them when final), adds the
// forming candles that changed, updates the aggregator's metrics and sends every
// shard's batch.
func (r *router) flush(final bool) {
	if final {
		r.closed = r.agg.Flush(r.closed[:0]) // finite input ended: its last candles are complete
	} else {
		r.closed = r.agg.Advance(r.now(), r.closed[:0])
	}
	r.route(r.closed, true)
	if !r.cfg.NoFormingCandles {
		r.route(r.agg.Forming(nil), false)
	}
	if len(r.pending) > 0 {
		r.releaseRepairs()
	}
	st := r.agg.Stats()
	for i, iv := range r.agg.Intervals() {
		r.m.late.WithLabelValues(iv.String()).Add(float64(st.Late[i] - r.lateSeen[i]))
		r.m.flatSkipped.WithLabelValues(iv.String()).Add(float64(st.FlatSkipped[i] - r.flatSeen[i]))
		r.lateSeen[i], r.flatSeen[i] = st.Late[i], st.FlatSkipped[i]
	}
	r.m.repeats.Add(float64(st.Repeats - r.repeatsSeen))
	r.repeatsSeen = st.Repeats
	for i := range r.jobs {
		r.send(i)
	}
}

// send hands shard i's job to its writer, blocking while the writer is busy (that is
// the backpressure that makes sources wait while Redis is down).
func (r *router) send(i int) {
	if r.jobs[i].batch.Len() == 0 && len(r.jobs[i].closed) == 0 && len(r.jobs[i].repairs) == 0 {
		return
	}
	r.queues[i] <- r.jobs[i]
	r.jobs[i] = newJob()
}

// sendIfIdle hands shard i's job to its writer if the writer has nothing else waiting,
// and otherwise leaves it to fill up. A trade that closes a candle calls it: the closed
// candle is then stored and announced (an analysis job enqueued) at once instead of at
// the next flush, up to FlushInterval later, while a busy writer keeps getting full
// batches.
func (r *router) sendIfIdle(i int) {
	if len(r.queues[i]) > 0 {
		return
	}
	select {
	case r.queues[i] <- r.jobs[i]:
		r.jobs[i] = newJob()
	default:
	}
}

// reportGap hands a gap to the repair workers, when gap repair is on: unless the queue
// is full or the gap is larger than GapRepair.MaxMissing (both counted unrepairable).
func (r *router) reportGap(g *Gap) {
	if r.gaps == nil {
		return
	}
	if g.Missing > r.cfg.GapRepair.MaxMissing {
		r.rm.fail(ReasonTooLarge)
		r.log.Warn("trade gap not repaired: too many trades missing; rebuild the candles with tickstash backfill --overwrite",
			"exchange", g.Exchange, "symbol", g.Symbol, "from_id", g.FromID, "to_id", g.ToID, "missing", g.Missing,
			"max", r.cfg.GapRepair.MaxMissing)
		return
	}
	select {
	case r.gaps <- gapReport{gap: *g, detected: r.cfg.Now()}:
	default:
		r.rm.fail(ReasonOverloaded)
		r.log.Warn("trade gap not repaired: the repair queue is full", "exchange", g.Exchange, "symbol", g.Symbol,
			"from_id", g.FromID, "to_id", g.ToID)
	}
}

// restartGap reports the trades a market missed while no ingester ran: those between
// the last trade id a previous run stored and the first one of this run.
func (r *router) restartGap(t *market.Trade, lastID string, lastTime time.Time) {
	if r.gaps == nil || lastID == "" {
		return
	}
	last, err1 := strconv.ParseInt(lastID, 10, 64)
	id, err2 := strconv.ParseInt(t.ID, 10, 64)
	if err1 != nil || err2 != nil || id <= last+1 {
		return
	}
	g := Gap{Exchange: t.Exchange, Symbol: t.Symbol, FromID: strconv.FormatInt(last+1, 10), ToID: strconv.FormatInt(id-1, 10),
		Missing: id - last - 1, Time: t.Time, LastTime: lastTime}
	r.m.events.WithLabelValues(string(g.Exchange), "gap").Inc()
	r.log.Warn("trades missed while ingest was down", "exchange", g.Exchange, "symbol", g.Symbol,
		"from_id", g.FromID, "to_id", g.ToID, "missing", g.Missing)
	r.reportGap(&g)
}

// resume seeds the aggregator with a market's stored state. Each read is bounded by
// ResumeTimeout under the writers' context; a failed read is logged with its cause
// and the market starts from scratch. It returns the id and time of the last trade
// stored ("" and zero when unknown).
func (r *router) resume(ex market.Exchange, sym market.Symbol) (string, time.Time) {
	lastID, lastTime, err := r.tryResume(ex, sym)
	if err != nil {
		r.m.resumeErrors.Inc()
		r.log.Warn("cannot resume market from Redis, starting it afresh: its forming candles restart with the next trade",
			"exchange", ex, "symbol", sym, "err", err)
		return "", time.Time{}
	}
	return lastID, lastTime
}

func (r *router) tryResume(ex market.Exchange, sym market.Symbol) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(r.readCtx, r.cfg.ResumeTimeout)
	defer cancel()
	var lastID string
	var lastTime time.Time
	tk, err := r.state.Ticker(ctx, ex, sym)
	switch {
	case err == nil:
		lastID, lastTime = tk.LastTradeID, tk.LastTime
	case !errors.Is(err, cache.ErrNotFound):
		return "", time.Time{}, fmt.Errorf("ingest: resume %s:%s: read its ticker (timeout %v): %w", ex, sym, r.cfg.ResumeTimeout, err)
	}
	var newest []market.Candle
	for _, iv := range r.agg.Intervals() {
		cs, err := r.state.LastCandles(ctx, ex, sym, iv, 1)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("ingest: resume %s:%s: read its last %s candle (timeout %v): %w", ex, sym, iv, r.cfg.ResumeTimeout, err)
		}
		newest = append(newest, cs...)
	}
	r.agg.Resume(ex, sym, lastID, newest)
	if len(newest) > 0 || lastID != "" {
		r.log.Debug("market resumed", "exchange", ex, "symbol", sym, "last_trade_id", lastID, "candles", len(newest))
	}
	return lastID, lastTime, nil
}

// now is the watermark's clock: the newest trade time with EventTimeWatermark, else
// the configured clock.
func (r *router) now() time.Time {
	if r.cfg.EventTimeWatermark {
		return r.watermark
	}
	return r.cfg.Now()
}

func (r *router) shard(ex market.Exchange, sym market.Symbol) int {
	if len(r.jobs) == 1 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(string(ex))
	h.WriteString(string(sym))
	return int(h.Sum64() % uint64(len(r.jobs)))
}
