package ingest

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// Store is where the ingester writes; *cache.MarketStore implements it.
type Store interface {
	Write(ctx context.Context, b *cache.Batch) (cache.WriteStats, error)
}

var _ Store = (*cache.MarketStore)(nil)

// StateReader reads back what a previous run stored, so that a restarted ingester
// continues each market's forming candles; *cache.MarketStore implements it.
type StateReader interface {
	Ticker(ctx context.Context, ex market.Exchange, sym market.Symbol) (cache.Ticker, error)
	LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error)
}

var _ StateReader = (*cache.MarketStore)(nil)

// CandleSink hears of every candle the aggregator closed, after the candle is stored.
// The analysis queue implements it to enqueue a job per closed candle.
type CandleSink interface {
	CandleClosed(ctx context.Context, c market.Candle) error
}

// IngesterConfig configures an Ingester. Zero values mean the documented defaults.
type IngesterConfig struct {
	// Aggregator configures candle building (intervals, grace, empty intervals).
	Aggregator AggregatorConfig
	// BatchSize is how many records a writer sends to Redis in one pipeline; 0 means
	// 1000.
	BatchSize int
	// FlushInterval bounds how long a record waits before it is written, and is the
	// watermark's tick; 0 means 100ms.
	FlushInterval time.Duration
	// Writers is how many goroutines write to Redis in parallel; markets are sharded
	// between them so each market's writes stay in order. 0 means 2.
	Writers int
	// RetryMin and RetryMax bound the exponential backoff (with jitter) between
	// attempts to write a batch while Redis fails; 0 means 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout is how long buffered records may still be written after Run's
	// context ends (Redis may be down); 0 means 10s. Records not written by then are
	// counted as dropped and logged.
	ShutdownTimeout time.Duration
	// NoFormingCandles stops writing forming candles at every flush; then only closed
	// candles are written.
	NoFormingCandles bool
	// NoResume starts every market from scratch instead of continuing, when the store
	// is a StateReader, the candles and trade ids a previous run left in Redis.
	NoResume bool
	// Now is the watermark clock; nil means time.Now.
	Now func() time.Time
	// EventTimeWatermark drives the watermark by the newest trade time seen instead of
	// Now: for replays and backfills, whose data is older than the clock.
	EventTimeWatermark bool
}

// Ingester runs sources, aggregates their trades into candles and writes everything to
// the store in batches, retrying with backoff while Redis is unavailable.
type Ingester struct {
	store   Store
	sink    CandleSink
	sources []Source
	cfg     IngesterConfig
	log     *slog.Logger
	m       *ingestMetrics
	seed    maphash.Seed
	events  chan Event
	// watermark is the newest trade time seen, for EventTimeWatermark.
	watermark time.Time
}

// NewIngester returns an ingester. sink may be nil. Metrics are registered with reg.
func NewIngester(store Store, sink CandleSink, sources []Source, cfg IngesterConfig, log *slog.Logger, reg prometheus.Registerer) *Ingester {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 2
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Aggregator.Intervals) == 0 {
		cfg.Aggregator.Intervals = []market.Interval{market.Interval1m}
	}
	g := &Ingester{
		store: store, sink: sink, sources: sources, cfg: cfg, log: log,
		m: newIngestMetrics(reg), seed: maphash.MakeSeed(),
		events: make(chan Event, 8192),
	}
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tickstash_ingest_queue_depth",
		Help: "Events waiting between sources and the aggregator.",
	}, func() float64 { return float64(len(g.events)) })
	return g
}

// job is one shard's batch and the closed candles to announce once it is stored.
type job struct {
	batch  cache.Batch
	closed []market.Candle
}

// Run ingests until ctx is done or every source has ended. On return every buffered
// record has been written, or ShutdownTimeout has passed (then the rest is dropped and
// logged). When the sources end by themselves (finite inputs), forming candles are
// closed and written; when ctx ends, they are written as forming. Run returns nil unless
// every source failed. Call Run once.
func (g *Ingester) Run(ctx context.Context) error {
	events := g.events

	var srcWG sync.WaitGroup
	var srcMu sync.Mutex
	var failed int
	var lastErr error
	for _, src := range g.sources {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := src.Run(ctx, events); err != nil {
				g.m.sourceErrors.WithLabelValues(src.Name()).Inc()
				g.log.Error("source stopped", "source", src.Name(), "err", err)
				srcMu.Lock()
				failed++
				lastErr = err
				srcMu.Unlock()
			}
		}()
	}
	go func() { srcWG.Wait(); close(events) }()

	// Writers outlive ctx by ShutdownTimeout so buffered records still land.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(g.cfg.ShutdownTimeout, cancelFlush)
		context.AfterFunc(flushCtx, func() { t.Stop() })
	})
	defer stopTimer()

	queues := make([]chan *job, g.cfg.Writers)
	var wWG sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *job, 2)
		wWG.Add(1)
		go func() { defer wWG.Done(); g.writer(flushCtx, queues[i]) }()
	}

	g.aggregate(ctx, events, queues)
	for _, q := range queues {
		close(q)
	}
	wWG.Wait()
	if len(g.sources) > 0 && failed == len(g.sources) {
		return lastErr
	}
	return nil
}

// aggregate owns the aggregator: it turns events into shard batches until events is
// closed.
func (g *Ingester) aggregate(ctx context.Context, events <-chan Event, queues []chan *job) {
	agg := NewAggregator(g.cfg.Aggregator)
	ivs := agg.Intervals()
	lateSeen := make([]int64, len(ivs))
	flatSeen := make([]int64, len(ivs))
	var repeatsSeen int64
	jobs := make([]*job, len(queues))
	for i := range jobs {
		jobs[i] = new(job)
	}
	var closed []market.Candle

	send := func(i int) {
		if jobs[i].batch.Len() == 0 && len(jobs[i].closed) == 0 {
			return
		}
		queues[i] <- jobs[i]
		jobs[i] = new(job)
	}
	// route adds candles to their market's shard; closed ones are also announced.
	route := func(cs []market.Candle, announce bool) {
		for _, c := range cs {
			i := g.shard(c.Exchange, c.Symbol, len(jobs))
			jobs[i].batch.Candles = append(jobs[i].batch.Candles, c)
			if announce {
				jobs[i].closed = append(jobs[i].closed, c)
				g.m.candlesClosed.WithLabelValues(c.Interval.String()).Inc()
			}
		}
	}
	flushAll := func(final bool) {
		closed = closed[:0]
		if final && ctx.Err() == nil {
			closed = agg.Flush(closed) // finite input ended: its last candles are complete
		} else {
			closed = agg.Advance(g.now(), closed)
		}
		route(closed, true)
		if !g.cfg.NoFormingCandles {
			route(agg.Forming(nil), false)
		}
		st := agg.Stats()
		for i, iv := range ivs {
			g.m.late.WithLabelValues(iv.String()).Add(float64(st.Late[i] - lateSeen[i]))
			g.m.flatSkipped.WithLabelValues(iv.String()).Add(float64(st.FlatSkipped[i] - flatSeen[i]))
			lateSeen[i], flatSeen[i] = st.Late[i], st.FlatSkipped[i]
		}
		g.m.repeats.Add(float64(st.Repeats - repeatsSeen))
		repeatsSeen = st.Repeats
		for i := range jobs {
			send(i)
		}
	}

	tick := time.NewTicker(g.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				flushAll(true)
				return
			}
			i := g.handle(agg, &ev, jobs, &closed, route)
			if i >= 0 && jobs[i].batch.Len() >= g.cfg.BatchSize {
				send(i)
			}
		case <-tick.C:
			flushAll(false)
		}
	}
}

// handle validates one event and adds it to its shard's batch, returning the shard, or
// -1 when the event was dropped.
func (g *Ingester) handle(agg *Aggregator, ev *Event, jobs []*job, closed *[]market.Candle, route func([]market.Candle, bool)) int {
	switch ev.Kind {
	case KindTrade:
		t := &ev.Trade
		if err := t.Validate(); err != nil {
			g.invalid("trade", err)
			return -1
		}
		if !agg.Known(t.Exchange, t.Symbol) {
			g.resume(agg, t.Exchange, t.Symbol)
		}
		g.m.events.WithLabelValues(string(t.Exchange), "trade").Inc()
		g.m.lastEvent.WithLabelValues(string(t.Exchange)).Set(float64(t.Time.UnixNano()) / 1e9)
		if t.Time.After(g.watermark) {
			g.watermark = t.Time
		}
		i := g.shard(t.Exchange, t.Symbol, len(jobs))
		jobs[i].batch.Trades = append(jobs[i].batch.Trades, *t)
		*closed, _ = agg.Add(t, (*closed)[:0])
		route(*closed, true)
		return i
	case KindQuote:
		q := &ev.Quote
		if err := q.Validate(); err != nil {
			g.invalid("quote", err)
			return -1
		}
		g.m.events.WithLabelValues(string(q.Exchange), "quote").Inc()
		i := g.shard(q.Exchange, q.Symbol, len(jobs))
		jobs[i].batch.Quotes = append(jobs[i].batch.Quotes, *q)
		return i
	case KindCandle:
		c := &ev.Candle
		if err := c.Validate(); err != nil {
			g.invalid("candle", err)
			return -1
		}
		g.m.events.WithLabelValues(string(c.Exchange), "candle").Inc()
		i := g.shard(c.Exchange, c.Symbol, len(jobs))
		jobs[i].batch.Candles = append(jobs[i].batch.Candles, *c)
		return i
	case KindGap:
		g.m.events.WithLabelValues(string(ev.Gap.Exchange), "gap").Inc()
		g.log.Warn("trades missed", "exchange", ev.Gap.Exchange, "symbol", ev.Gap.Symbol,
			"from_id", ev.Gap.FromID, "to_id", ev.Gap.ToID, "missing", ev.Gap.Missing)
		return -1
	default:
		g.invalid("unknown", errors.New("event of unknown kind"))
		return -1
	}
}

// resume seeds the aggregator with a market's stored state, when the store can read it
// back. A failed read is logged and the market starts from scratch.
func (g *Ingester) resume(agg *Aggregator, ex market.Exchange, sym market.Symbol) {
	r, ok := g.store.(StateReader)
	if !ok || g.cfg.NoResume {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lastID string
	tk, err := r.Ticker(ctx, ex, sym)
	switch {
	case err == nil:
		lastID = tk.LastTradeID
	case !errors.Is(err, cache.ErrNotFound):
		g.log.Warn("cannot resume market, starting it afresh", "exchange", ex, "symbol", sym, "err", err)
		return
	}
	var newest []market.Candle
	for _, iv := range agg.Intervals() {
		cs, err := r.LastCandles(ctx, ex, sym, iv, 1)
		if err != nil {
			g.log.Warn("cannot resume market, starting it afresh", "exchange", ex, "symbol", sym, "err", err)
			return
		}
		newest = append(newest, cs...)
	}
	agg.Resume(ex, sym, lastID, newest)
	if len(newest) > 0 || lastID != "" {
		g.log.Debug("market resumed", "exchange", ex, "symbol", sym, "last_trade_id", lastID, "candles", len(newest))
	}
}

// now is the watermark's clock: the newest trade time with EventTimeWatermark, else
// the configured clock.
func (g *Ingester) now() time.Time {
	if g.cfg.EventTimeWatermark {
		return g.watermark
	}
	return g.cfg.Now()
}

func (g *Ingester) invalid(kind string, err error) {
	g.m.invalid.WithLabelValues(kind).Inc()
	g.log.Debug("invalid event dropped", "kind", kind, "err", err)
}

func (g *Ingester) shard(ex market.Exchange, sym market.Symbol, n int) int {
	if n == 1 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(g.seed)
	h.WriteString(string(ex))
	h.WriteString(string(sym))
	return int(h.Sum64() % uint64(n))
}

// writer writes jobs in order, retrying each until it succeeds or ctx ends.
func (g *Ingester) writer(ctx context.Context, jobs <-chan *job) {
	for j := range jobs {
		if !g.writeWithRetry(ctx, j) {
			continue
		}
		if g.sink == nil {
			continue
		}
		for _, c := range j.closed {
			if err := g.sink.CandleClosed(ctx, c); err != nil {
				g.m.sinkErrors.Inc()
				g.log.Warn("candle-closed event failed", "exchange", c.Exchange, "symbol", c.Symbol,
					"interval", c.Interval, "open_time", c.OpenTime, "err", err)
			}
		}
	}
}

func (g *Ingester) writeWithRetry(ctx context.Context, j *job) bool {
	retry := backoff.New(backoff.Policy{Min: g.cfg.RetryMin, Max: g.cfg.RetryMax, Jitter: 0.5})
	for attempt := 1; ; attempt++ {
		_, err := g.store.Write(ctx, &j.batch)
		if err == nil {
			if attempt > 1 {
				g.log.Info("redis writes resumed", "attempts", attempt)
			}
			return true
		}
		if errors.Is(err, cache.ErrInvalid) {
			// Retrying cannot help; records are validated before batching, so this
			// is a bug worth a loud log.
			g.m.dropped.Add(float64(j.batch.Len()))
			g.log.Error("batch rejected as invalid, dropped", "records", j.batch.Len(), "err", err)
			return false
		}
		if ctx.Err() != nil {
			g.m.dropped.Add(float64(j.batch.Len()))
			g.log.Error("shutdown: batch not written, dropped", "records", j.batch.Len(), "err", err)
			return false
		}
		g.m.retries.Inc()
		if attempt == 1 || attempt%10 == 0 {
			g.log.Warn("redis write failed, retrying", "attempt", attempt, "records", j.batch.Len(), "retry_in", retry.Peek(), "err", err)
		}
		_ = retry.Wait(ctx) // an ended ctx is seen by the next attempt's check
	}
}

type ingestMetrics struct {
	events        *prometheus.CounterVec
	invalid       *prometheus.CounterVec
	candlesClosed *prometheus.CounterVec
	late          *prometheus.CounterVec
	flatSkipped   *prometheus.CounterVec
	repeats       prometheus.Counter
	lastEvent     *prometheus.GaugeVec
	sourceErrors  *prometheus.CounterVec
	retries       prometheus.Counter
	dropped       prometheus.Counter
	sinkErrors    prometheus.Counter
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	f := promauto.With(reg)
	return &ingestMetrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_events_total",
			Help: "Valid events taken in from sources, by exchange and kind (trade, quote, candle, gap).",
		}, []string{"exchange", "kind"}),
		invalid: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_invalid_events_total",
			Help: "Events dropped because they did not validate, by kind.",
		}, []string{"kind"}),
		candlesClosed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_candles_closed_total",
			Help: "Candles closed by the aggregator (flat ones included), by interval.",
		}, []string{"interval"}),
		late: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_late_trades_total",
			Help: "Trades dropped from an interval because their candle had already closed, by interval.",
		}, []string{"interval"}),
		flatSkipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_flat_candles_skipped_total",
			Help: "Flat candles not emitted because a quiet gap was longer than the cap, by interval.",
		}, []string{"interval"}),
		repeats: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_repeated_trades_total",
			Help: "Trades kept out of candles because their id was not above the last aggregated one (reconnect overlaps, replays).",
		}),
		lastEvent: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickstash_ingest_last_trade_timestamp_seconds",
			Help: "Exchange time of the newest trade taken in, by exchange (data freshness).",
		}, []string{"exchange"}),
		sourceErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_source_errors_total",
			Help: "Sources that stopped with an error, by source.",
		}, []string{"source"}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_write_retries_total",
			Help: "Batch writes retried after Redis failed.",
		}),
		dropped: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_records_dropped_total",
			Help: "Records never written: still failing when the shutdown timeout ran out, or rejected as invalid.",
		}),
		sinkErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_candle_events_failed_total",
			Help: "Candle-closed events the sink (analysis queue, notifier) failed to take.",
		}),
	}
}
