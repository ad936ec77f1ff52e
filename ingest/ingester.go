package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// Store is where the ingester writes; *cache.MarketStore implements it. Write must not
// keep b or its slices after it returns: the ingester reuses batches.
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
	// watermark's tick; 0 means 100ms. A trade that closes a candle does not wait for
	// it: its market's batch goes to an idle writer at once, so the candle is stored and
	// announced to the sink without that delay.
	FlushInterval time.Duration
	// Writers is how many goroutines write to Redis in parallel; markets are sharded
	// between them so each market's writes stay in order. 0 means 2.
	Writers int
	// RetryMin and RetryMax bound the exponential backoff (with jitter) between
	// attempts to write a batch while Redis fails; 0 means 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout is how long buffered records may still be written after Run's
	// context ends (Redis may be down); 0 means 10s. Records not written by then are
	// counted as dropped, logged, and make Run return a *LostError.
	ShutdownTimeout time.Duration
	// ResumeTimeout bounds the reads that resume a market from what Redis holds, when
	// the ingester first sees it; 0 means 2s. A market whose reads fail starts afresh.
	ResumeTimeout time.Duration
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
	// GapRepair fills the trade gaps sources report; its zero value only counts and
	// logs them. See GapRepairConfig.
	GapRepair GapRepairConfig
}

// ErrRecordsLost is wrapped by the *LostError Run returns when records were never
// written.
var ErrRecordsLost = errors.New("ingest: records lost")

// LostError says how many records Run could not write: Redis still failed when the
// shutdown timeout ran out. It wraps ErrRecordsLost.
type LostError struct {
	// Records is how many trades, quotes and candle writes were dropped.
	Records int64
	// Err is the last write error.
	Err error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("ingest: %d records lost: Redis still failed when the shutdown timeout ran out (last error: %v)", e.Records, e.Err)
}

// Unwrap returns ErrRecordsLost.
func (e *LostError) Unwrap() error { return ErrRecordsLost }

// Ingester runs sources, aggregates their trades into candles and writes everything to
// the store in batches, retrying with backoff while Redis is unavailable.
//
// Goroutines, all started and ended by Run: one per source (each ends when its Run
// returns; the last one closes the events channel); one router, the aggregation loop
// (ends when the events channel is closed and drained); one per writer (each ends when
// Run closes its queue after the router ended, or gives up when the shutdown timeout
// ends its context).
type Ingester struct {
	store   Store
	sink    CandleSink
	sources []Source
	cfg     IngesterConfig
	log     *slog.Logger
	m       *ingestMetrics
	rm      *repairMetrics
	seed    maphash.Seed
	events  chan Event
	// rebuildWG tracks the candle rebuilds of repaired gaps; rebuildSem bounds them to
	// GapRepair.Workers at a time.
	rebuildWG  sync.WaitGroup
	rebuildSem chan struct{}
	// lost counts the records writers dropped; lastLost is the error that made them.
	lost     atomic.Int64
	lastLost atomic.Pointer[error]
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
	if cfg.ResumeTimeout <= 0 {
		cfg.ResumeTimeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Aggregator.Intervals) == 0 {
		cfg.Aggregator.Intervals = []market.Interval{market.Interval1m}
	}
	if cfg.GapRepair.Workers <= 0 {
		cfg.GapRepair.Workers = 2
	}
	if cfg.GapRepair.Queue <= 0 {
		cfg.GapRepair.Queue = 64
	}
	if cfg.GapRepair.MaxMissing <= 0 {
		cfg.GapRepair.MaxMissing = 100_000
	}
	g := &Ingester{
		store: store, sink: sink, sources: sources, cfg: cfg, log: log,
		m: newIngestMetrics(reg), rm: newRepairMetrics(reg), seed: maphash.MakeSeed(),
		events:     make(chan Event, 8192),
		rebuildSem: make(chan struct{}, cfg.GapRepair.Workers),
	}
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tickstash_ingest_queue_depth",
		Help: "Events waiting between sources and the aggregator.",
	}, func() float64 { return float64(len(g.events)) })
	return g
}

// Run ingests until ctx is done or every source has ended. On return every buffered
// record has been written, or ShutdownTimeout has passed: then the rest is dropped,
// logged, and Run returns a *LostError saying how many. When the sources end by
// themselves (finite inputs), forming candles are closed and written; when ctx ends,
// they are written as forming. Otherwise Run returns nil unless every source failed
// (then the last source's error). Call Run once.
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

	// Writers (and resume reads) outlive ctx by ShutdownTimeout so buffered records
	// still land.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopTimer := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(g.cfg.ShutdownTimeout, cancelFlush)
		context.AfterFunc(flushCtx, func() { t.Stop() })
	})
	defer stopTimer()

	queues := make([]chan *job, g.cfg.Writers)
	sendQueues := make([]chan<- *job, g.cfg.Writers)
	var wWG sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *job, 2)
		sendQueues[i] = queues[i]
		wWG.Add(1)
		go func() { defer wWG.Done(); g.writer(flushCtx, queues[i]) }()
	}

	var state StateReader
	if r, ok := g.store.(StateReader); ok && !g.cfg.NoResume {
		state = r
	}
	rt := newRouter(&g.cfg, g.m, g.log, g.seed, state, flushCtx, sendQueues)
	// Gap repair: workers fetch missing trades over REST while the router goes on;
	// they end with the role, or when the router is done with finite inputs.
	repairCtx, cancelRepair := context.WithCancel(ctx)
	var rWG sync.WaitGroup
	if g.cfg.GapRepair.Repairer != nil {
		gaps := make(chan gapReport, g.cfg.GapRepair.Queue)
		fetched := make(chan gapFetched, g.cfg.GapRepair.Queue)
		rt.gaps, rt.fetched, rt.rm = gaps, fetched, g.rm
		for range g.cfg.GapRepair.Workers {
			rWG.Add(1)
			go func() { defer rWG.Done(); g.repairWorker(repairCtx, gaps, fetched) }()
		}
	}
	rt.run(ctx, events)
	cancelRepair()
	rWG.Wait()
	for _, q := range queues {
		close(q)
	}
	wWG.Wait()
	g.rebuildWG.Wait()
	if n := g.lost.Load(); n > 0 {
		var last error
		if p := g.lastLost.Load(); p != nil {
			last = *p
		}
		g.log.Error("records lost: not written to Redis before the shutdown timeout", "records", n, "err", last)
		return &LostError{Records: n, Err: last}
	}
	if len(g.sources) > 0 && failed == len(g.sources) {
		return lastErr
	}
	return nil
}

// writer writes jobs in order, retrying each until it succeeds or ctx ends, then
// announces the job's closed candles. It returns when jobs is closed.
func (g *Ingester) writer(ctx context.Context, jobs <-chan *job) {
	for j := range jobs {
		if !g.writeWithRetry(ctx, j) {
			for range j.repairs {
				g.rm.fail(ReasonShutdown)
			}
			j.release()
			continue
		}
		if g.sink != nil {
			for _, c := range j.closed {
				if err := g.sink.CandleClosed(ctx, c); err != nil {
					g.m.sinkErrors.Inc()
					g.log.Warn("candle-closed event failed", "exchange", c.Exchange, "symbol", c.Symbol,
						"interval", c.Interval, "open_time", c.OpenTime, "err", err)
				}
			}
		}
		// After the write the market's trades before the repair are in Redis; later
		// writes never touch its closed candles, so the rebuild (which may read an
		// hour of trades) runs beside the writer instead of holding its queue.
		for _, p := range j.repairs {
			g.rebuildWG.Add(1)
			go func() {
				defer g.rebuildWG.Done()
				g.rebuildSem <- struct{}{}
				defer func() { <-g.rebuildSem }()
				g.repair(ctx, p)
			}()
		}
		j.release()
	}
}

// writeWithRetry writes j's batch, retrying with backoff while the store fails. It
// reports false when ctx ended first: the batch is then counted as lost.
func (g *Ingester) writeWithRetry(ctx context.Context, j *job) bool {
	retry := backoff.New(backoff.Policy{Min: g.cfg.RetryMin, Max: g.cfg.RetryMax, Jitter: 0.5})
	var cause error // the last failure Redis itself gave, rather than our own cancellation
	for attempt := 1; ; attempt++ {
		_, err := g.store.Write(ctx, &j.batch)
		if err == nil {
			if attempt > 1 {
				g.log.Info("redis writes resumed", "attempts", attempt)
			}
			return true
		}
		if ctx.Err() == nil || cause == nil {
			cause = err
		}
		if ctx.Err() != nil {
			g.m.dropped.Add(float64(j.batch.Len()))
			g.lost.Add(int64(j.batch.Len()))
			if !errors.Is(cause, context.Canceled) || g.lastLost.Load() == nil {
				g.lastLost.Store(&cause) // keep a cause from Redis over our own cancellation
			}
			g.log.Error("shutdown: batch not written, dropped", "records", j.batch.Len(), "err", err)
			return false
		}
		g.m.retries.Inc()
		if attempt == 1 || attempt%10 == 0 {
			g.log.Warn("redis write failed, retrying", "attempt", attempt, "records", j.batch.Len(), "retry_in", retry.Peek(), "err", err)
		}
		_ = retry.Wait(ctx) // an ended ctx is seen after the next attempt
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
	resumeErrors  prometheus.Counter
}

// InvalidEvents registers on reg (or returns, when already registered there)
// tickstash_ingest_invalid_events_total{kind}: events dropped where they entered
// tickstash because they did not validate. The boundaries that build Events (the feed
// streams, the ingester's own check of empty events) count into it.
func InvalidEvents(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_ingest_invalid_events_total",
		Help: "Events dropped because they did not validate where they entered, by kind.",
	}, []string{"kind"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err) // the same name with another shape: a programming error
	}
	return c
}

func newIngestMetrics(reg prometheus.Registerer) *ingestMetrics {
	f := promauto.With(reg)
	return &ingestMetrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_events_total",
			Help: "Valid events taken in from sources, by exchange and kind (trade, quote, candle, gap).",
		}, []string{"exchange", "kind"}),
		invalid: InvalidEvents(reg),
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
			Help: "Records never written: Redis still failing when the shutdown timeout ran out.",
		}),
		resumeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_resume_errors_total",
			Help: "Markets started afresh because reading their stored state from Redis failed.",
		}),
		sinkErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_candle_events_failed_total",
			Help: "Candle-closed events the sink (analysis queue, notifier) failed to take.",
		}),
	}
}
