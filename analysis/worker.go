package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// CandleReader loads the newest candles of a market, oldest first; *cache.MarketStore
// satisfies it. It returns an empty slice for a market it has no candles of.
type CandleReader interface {
	LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error)
}

// Publisher hands a job's result to the next stage; *pipeline.AnalysisPublisher satisfies
// it (JetStream, Nats-Msg-Id Result.MsgID). PublishUpdate returns once the update is
// durably stored; duplicate reports that an earlier run of the job had stored it already.
type Publisher interface {
	PublishUpdate(ctx context.Context, u *Result) (duplicate bool, err error)
}

var _ Publisher = (*pipeline.AnalysisPublisher)(nil)

// Job is what a HandlerFunc is given.
type Job struct {
	ID   string
	Spec JobSpec
	// Attempt is the delivery number, from 1.
	Attempt int
}

// HandlerFunc replaces the analysis a Worker runs (benchmarks and tests use it). Its
// error decides the job's fate: nil finishes it as done; an error wrapping
// ErrInsufficientData finishes it as failed; one made by Permanent dead-letters it at
// once; any other error is retried with backoff until QueueConfig.MaxDeliveries.
type HandlerFunc func(ctx context.Context, job Job) error

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the job goes to the dead-letter stream at
// once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was made by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// WorkerConfig configures a Worker. Every zero value means the documented default.
type WorkerConfig struct {
	// Concurrency is how many jobs run at once. 0 means 4.
	Concurrency int
	// Prefetch is how many jobs beyond Concurrency the worker reads ahead, so that reads,
	// claims and acknowledgements go to Redis in batches. Read-ahead jobs hold their
	// leases (extended like running ones) and are handed back at shutdown without
	// running. 0 means 4×Concurrency; a negative value means none.
	Prefetch int
	// Consumer names this worker in the consumer group; it must be unique among live
	// workers. "" means "<hostname>-<pid>-<random>".
	Consumer string
	// Analyzers maps analyzer names to indicator specs (ParseSpec syntax). nil means
	// {"default": DefaultIndicators}. A job naming an analyzer not in the map is
	// dead-lettered.
	Analyzers map[string][]string
	// Candles is how many of the newest candles a job loads. 0 means 500.
	Candles int
	// PollInterval is how long a read for new jobs blocks, and how often an idle worker
	// promotes due retries and takes over expired leases (at least every Lease/4). 0
	// means 500ms.
	PollInterval time.Duration
	// Heartbeat is how often the worker extends the leases of the jobs it holds (one
	// script call for all of them; none while it holds none). It must be shorter than
	// QueueConfig.Lease, or Run fails: a few missed heartbeats in a row, not one, should
	// let another worker take a job over. 0 means Lease/3.
	Heartbeat time.Duration
	// JobTimeout bounds one delivery; a job that runs over it is retried. 0 means 5
	// minutes.
	JobTimeout time.Duration
	// ShutdownTimeout is how long Run lets in-flight jobs finish after its context ends;
	// jobs still running then are cancelled and handed back to the queue. 0 means 10s.
	ShutdownTimeout time.Duration
	// Handler, if set, runs instead of the analysis; the CandleReader and Publisher
	// may then be nil.
	Handler HandlerFunc
}

// Worker takes jobs from a Queue and runs them: it loads the newest candles, computes
// the analyzer's indicators (resuming their saved streaming state when it still
// applies), stores the result and state under the delivery's fencing token, publishes
// the result to the analysis update stream and only then acknowledges the job.
type Worker struct {
	q     *Queue
	store CandleReader
	pub   Publisher
	cfg   WorkerConfig
	log   *slog.Logger

	analyzers map[string][]indicator.Spec
	specErr   error

	inFlight      prometheus.Gauge
	duration      prometheus.Histogram
	completed     *prometheus.CounterVec
	publishErrors prometheus.Counter
	duplicates    prometheus.Counter
	redisErrors   prometheus.Counter
	removed       *prometheus.CounterVec

	mu      sync.Mutex
	running map[*delivery]context.CancelFunc

	// jobsMu guards sends on the handlers' channel against its close at shutdown.
	jobsMu     sync.Mutex
	jobsClosed bool
	// housekeepAt is when fetch is next due to promote retries or reclaim expired
	// leases (Unix ns). Until then the acker refills the slots it frees in the same call
	// that settles; from then on it hands them back to fetch, so that fetch runs.
	housekeepAt atomic.Int64
}

// NewWorker returns a worker of q. It reads candles from store and publishes results with
// pub (nil: results are stored only); log receives operational messages (nil:
// discarded). Its metrics are registered with reg. An invalid analyzer spec in cfg makes
// Run fail at once.
func NewWorker(q *Queue, store CandleReader, pub Publisher, cfg WorkerConfig, log *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 4 * cfg.Concurrency
	}
	cfg.Prefetch = max(cfg.Prefetch, 0)
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = host + "-" + strconv.Itoa(os.Getpid()) + "-" + newJobID()[:6]
	}
	if cfg.Analyzers == nil {
		cfg.Analyzers = map[string][]string{"default": DefaultIndicators}
	}
	if cfg.Candles <= 0 {
		cfg.Candles = 500
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 5 * time.Minute
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = q.cfg.Lease / 3
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{q: q, store: store, pub: pub, cfg: cfg, log: log,
		analyzers: map[string][]indicator.Spec{}, running: map[*delivery]context.CancelFunc{}}
	for name, texts := range cfg.Analyzers {
		for _, t := range texts {
			s, err := indicator.ParseSpec(t)
			if err != nil && w.specErr == nil {
				w.specErr = fmt.Errorf("analysis: analyzer %q: %w", name, err)
			}
			w.analyzers[name] = append(w.analyzers[name], s)
		}
	}
	f := promauto.With(reg)
	w.inFlight = f.NewGauge(prometheus.GaugeOpts{
		Name: "tickstash_analysis_jobs_in_flight",
		Help: "Jobs a worker of this process is running.",
	})
	w.duration = f.NewHistogram(prometheus.HistogramOpts{
		Name:    "tickstash_analysis_job_duration_seconds",
		Help:    "Time one delivery of a job ran, whatever its outcome.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	w.completed = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_analysis_jobs_completed_total",
		Help: "Deliveries settled by outcome: done, failed, retry, dead, release (handed back at shutdown), stale (lease lost).",
	}, []string{"outcome"})
	w.publishErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "tickstash_analysis_publish_errors_total",
		Help: "Attempts to publish a result update that the analysis stream did not acknowledge; each is retried (the result is stored regardless).",
	})
	w.duplicates = f.NewCounter(prometheus.CounterOpts{
		Name: "tickstash_analysis_updates_duplicate_total",
		Help: "Result updates the analysis stream already held (a retried job's republish), dropped by their Nats-Msg-Id.",
	})
	w.removed = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tickstash_analysis_consumers_removed_total",
		Help: "Consumers removed from the queue's group: stopped (this worker at a clean stop) or idle (a dead worker's, by the janitor).",
	}, []string{"reason"})
	w.redisErrors = f.NewCounter(prometheus.CounterOpts{
		Name: "tickstash_analysis_worker_redis_errors_total",
		Help: "Redis calls of the worker loop that failed (reads, reclaims, settlements) and were retried.",
	})
	return w
}

// Consumer returns the worker's consumer name.
func (w *Worker) Consumer() string { return w.cfg.Consumer }

// Run processes jobs until ctx ends, then stops taking jobs, lets in-flight jobs finish
// for up to WorkerConfig.ShutdownTimeout, hands the rest back to the queue, removes its
// consumer from the group and returns nil. While it runs, its janitor removes the
// consumers of dead workers (see QueueConfig.ConsumerIdle). Redis errors do not stop it:
// it retries with backoff and jobs it cannot settle are reclaimed by a worker after the
// lease. It returns an error only for an invalid configuration.
func (w *Worker) Run(ctx context.Context) error {
	if w.specErr != nil {
		return w.specErr
	}
	if w.cfg.Heartbeat >= w.q.cfg.Lease {
		return fmt.Errorf("analysis: worker heartbeat %v is not shorter than the lease %v: jobs would be taken over from live workers; "+
			"lower the heartbeat or raise the lease", w.cfg.Heartbeat, w.q.cfg.Lease)
	}
	n := w.cfg.Concurrency
	total := n + w.cfg.Prefetch
	slots := make(chan struct{}, total)
	for range total {
		slots <- struct{}{}
	}
	jobs := make(chan *delivery, total)
	settled := make(chan settlement, total)
	// Handlers outlive ctx by the shutdown grace period.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	var handlers sync.WaitGroup
	for range n {
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for d := range jobs {
				if ctx.Err() != nil {
					// Read ahead but not started before shutdown: hand it back.
					settled <- settlement{d: d, out: outRelease}
					continue
				}
				settled <- w.handle(hctx, d)
			}
		}()
	}
	ackerDone := make(chan struct{})
	go w.acker(ctx, settled, slots, jobs, ackerDone)
	hbCtx, hbStop := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go w.heartbeat(hbCtx, hbDone)
	janitorDone := make(chan struct{})
	go w.janitor(ctx, janitorDone)

	w.fetch(ctx, slots, jobs)

	w.jobsMu.Lock()
	w.jobsClosed = true
	close(jobs)
	w.jobsMu.Unlock()
	idle := make(chan struct{})
	go func() { handlers.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("analysis: shutdown grace over, handing back running jobs")
		hcancel()
		<-idle
	}
	close(settled)
	<-ackerDone
	hbStop()
	<-hbDone
	<-janitorDone
	w.leave()
	return nil
}

// fetch reads and reclaims jobs while slots are free, until ctx ends.
func (w *Worker) fetch(ctx context.Context, slots chan struct{}, jobs chan<- *delivery) {
	every := min(w.cfg.PollInterval, max(w.q.cfg.Lease/4, 10*time.Millisecond))
	var lastHousekeep time.Time
	busy := false // the last fetch found jobs: read without blocking first
	errDelay := backoff.New(backoff.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5})
	for {
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		free := 1
	more:
		for free < cap(slots) {
			select {
			case <-slots:
				free++
			default:
				break more
			}
		}
		// Redis calls run on a context that ctx's end does not cut short, so that no
		// entry is delivered to us and dropped on the floor by a cancelled read.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.PollInterval+5*time.Second)
		var ds []delivery
		var err error
		if time.Since(lastHousekeep) >= every {
			// Due retries and expired leases, in one call: an idle worker's only
			// call besides its blocking read.
			lastHousekeep = time.Now()
			_, ds, err = w.q.housekeep(rctx, w.cfg.Consumer, free, 1000)
		}
		w.housekeepAt.Store(lastHousekeep.Add(every).UnixNano())
		if err == nil && len(ds) == 0 && busy {
			// Jobs are flowing: read and claim in one call, which blocks not.
			_, ds, err = w.q.completeAndRead(rctx, w.cfg.Consumer, nil, free)
		}
		if err == nil && len(ds) == 0 {
			ds, err = w.q.read(rctx, w.cfg.Consumer, free, w.cfg.PollInterval)
		}
		busy = len(ds) > 0
		cancel()
		w.hold(ds)
		for i := range ds {
			jobs <- &ds[i]
		}
		for range free - len(ds) {
			slots <- struct{}{}
		}
		if err != nil {
			w.redisErrors.Inc()
			w.log.Warn("analysis: worker cannot reach the queue", "err", err, "retry_in", errDelay.Peek())
			if errDelay.Wait(ctx) != nil {
				return
			}
			continue
		}
		errDelay.Reset()
	}
}

// handle runs one delivery and says how to settle it.
func (w *Worker) handle(hctx context.Context, d *delivery) settlement {
	w.inFlight.Inc()
	defer w.inFlight.Dec()
	start := time.Now()
	jctx, cancel := context.WithTimeout(hctx, w.cfg.JobTimeout)
	w.mu.Lock()
	w.running[d] = cancel
	w.mu.Unlock()
	err := w.run(jctx, d)
	cancel()
	w.duration.Observe(time.Since(start).Seconds())

	s := settlement{d: d}
	switch {
	case err == nil:
		s.out = outDone
	case errors.Is(err, errLeaseLost):
		s.out = outDone // refused by the script as stale; nothing changes
	case hctx.Err() != nil:
		s.out = outRelease
	case errors.Is(err, ErrInsufficientData):
		s.out = outFailed
	case IsPermanent(err):
		s.out = outDead
	case d.attempt >= w.q.cfg.MaxDeliveries:
		s.out = outDead
		err = fmt.Errorf("analysis: gave up after %d deliveries: %w", d.attempt, err)
	default:
		s.out = outRetry
	}
	if err != nil {
		s.err = err.Error()
		w.log.Debug("analysis: job ended with an error", "job", d.id, "attempt", d.attempt, "outcome", s.out, "err", err)
	}
	return s
}

// run executes the job of d.
func (w *Worker) run(ctx context.Context, d *delivery) error {
	if err := d.spec.Validate(); err != nil {
		return Permanent(fmt.Errorf("analysis: malformed job %s: %w", d.id, err))
	}
	if w.cfg.Handler != nil {
		return w.cfg.Handler(ctx, Job{ID: d.id, Spec: d.spec, Attempt: d.attempt})
	}
	specs, ok := w.analyzers[d.spec.Analyzer]
	if !ok {
		return Permanent(fmt.Errorf("analysis: job %s: unknown analyzer %q", d.id, d.spec.Analyzer))
	}
	t := d.spec.target()
	candles, err := w.store.LastCandles(ctx, d.spec.Exchange, d.spec.Symbol, d.spec.Interval, w.cfg.Candles)
	if err != nil {
		return fmt.Errorf("analysis: job %s: %w", d.id, err)
	}
	prev, err := w.q.loadState(ctx, t)
	if err != nil {
		return err
	}
	values, fed, state, err := analyse(specs, candles, prev)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, t)
	}
	res := &Result{Exchange: d.spec.Exchange, Symbol: d.spec.Symbol, Interval: d.spec.Interval,
		Analyzer: d.spec.Analyzer, CandleTime: time.UnixMilli(state.Last).UTC(), Values: values,
		Candles: fed, Watermark: d.spec.Watermark, JobID: d.id, ComputedAt: w.q.cfg.Now().UTC()}
	for i := len(candles) - 1; i >= 0; i-- {
		if candles[i].OpenTime.UnixMilli() == state.Last {
			res.Close = candles[i].Close
			break
		}
	}
	stateJSON, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("analysis: encode state of %s: %w", t, err)
	}
	if err := w.q.storeResult(ctx, d, res, stateJSON); err != nil {
		return err
	}
	if w.pub != nil {
		// The job is acknowledged only after the next stage has the update. A failed
		// publish is retried in place (the heartbeat keeps the lease) until the job's
		// timeout, so that a NATS outage does not use up the job's deliveries; past it,
		// the job is retried and republishes the same MsgID.
		wait := 100 * time.Millisecond
		for {
			dup, err := w.pub.PublishUpdate(ctx, res)
			if err == nil {
				if dup {
					w.duplicates.Inc()
				}
				break
			}
			w.publishErrors.Inc()
			if ctx.Err() != nil {
				return fmt.Errorf("analysis: job %s: %w", d.id, err)
			}
			w.log.Warn("analysis: publish result; retrying", "target", t, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("analysis: job %s: %w", d.id, err)
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}
	return nil
}

// hold records that the worker holds the leases of ds, running or not, so that the
// heartbeat extends them.
func (w *Worker) hold(ds []delivery) {
	w.mu.Lock()
	for i := range ds {
		w.running[&ds[i]] = nil
	}
	w.mu.Unlock()
}

// ackLinger is how long the acker waits to grow a batch once the worker has caught up
// with the producers (see acker).
const ackLinger = time.Millisecond

// acker settles finished deliveries in batches. While ctx lasts and fetch is not due
// for housekeeping, the call that settles a batch also takes up to as many new jobs as
// it frees slots, and passes them to the handlers; the slots left over go back to fetch.
func (w *Worker) acker(ctx context.Context, in <-chan settlement, slots chan<- struct{}, jobs chan<- *delivery, done chan<- struct{}) {
	defer close(done)
	const maxBatch = 128
	batch := make([]settlement, 0, maxBatch)
	// short is set when the last call took fewer new jobs than it asked for: the
	// worker has caught up with the producers. The next batch then waits up to
	// ackLinger for more settlements, so that the call settles and takes more jobs at
	// once, instead of one round trip per job or two. Only the acknowledgement waits,
	// after each job has run; jobs arriving meanwhile reach the worker's read.
	short := false
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for s := range in {
		batch = append(batch[:0], s)
		lingering := short
		if lingering {
			linger.Reset(ackLinger)
		}
	drain:
		for len(batch) < maxBatch {
			if lingering {
				select {
				case s2, ok := <-in:
					if !ok {
						break drain
					}
					batch = append(batch, s2)
					continue
				case <-linger.C:
					lingering = false
				}
			}
			select {
			case s2, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, s2)
			default:
				break drain
			}
		}
		if lingering && !linger.Stop() {
			<-linger.C
		}
		refill := 0
		if ctx.Err() == nil && time.Now().UnixNano() < w.housekeepAt.Load() {
			refill = len(batch)
		}
		ds := w.settle(batch, refill)
		short = refill > 0 && len(ds) < refill
		w.mu.Lock()
		for _, s := range batch {
			delete(w.running, s.d)
		}
		w.mu.Unlock()
		if len(ds) > 0 {
			w.hold(ds)
			w.jobsMu.Lock()
			if !w.jobsClosed {
				// Each delivery takes one of the slots batch freed, so the channel has
				// room.
				for i := range ds {
					jobs <- &ds[i]
				}
			}
			closed := w.jobsClosed
			w.jobsMu.Unlock()
			if closed {
				// Read while shutting down: hand them straight back.
				back := make([]settlement, len(ds))
				for i := range ds {
					back[i] = settlement{d: &ds[i], out: outRelease}
				}
				w.settle(back, 0)
				w.mu.Lock()
				for _, s := range back {
					delete(w.running, s.d)
				}
				w.mu.Unlock()
				ds = nil
			}
		}
		for range len(batch) - len(ds) {
			slots <- struct{}{}
		}
	}
}

// settle records a batch, retrying Redis errors for up to one lease; after that the
// deliveries stay pending and another worker reclaims them. With refill > 0 the same
// call reads and claims up to refill new jobs, which it returns.
func (w *Worker) settle(batch []settlement, refill int) []delivery {
	delay := backoff.New(backoff.Policy{Min: 50 * time.Millisecond, Max: time.Second, Jitter: 0.5})
	deadline := time.Now().Add(w.q.cfg.Lease)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		applied, ds, err := w.q.completeAndRead(ctx, w.cfg.Consumer, batch, refill)
		cancel()
		if err == nil || applied != nil {
			for i, s := range batch {
				if applied[i] {
					w.completed.WithLabelValues(string(s.out)).Inc()
				} else {
					w.completed.WithLabelValues("stale").Inc()
				}
			}
			if err != nil {
				w.redisErrors.Inc()
				w.log.Warn("analysis: jobs settled, but new ones not taken; they will be reclaimed after the lease", "err", err)
			}
			return ds
		}
		w.redisErrors.Inc()
		if time.Now().After(deadline) {
			w.log.Error("analysis: cannot settle jobs; they will be reclaimed after the lease", "jobs", len(batch), "err", err)
			return nil
		}
		time.Sleep(delay.Next())
	}
}

// heartbeat extends the leases of the deliveries the worker holds every
// WorkerConfig.Heartbeat and cancels those another worker has taken over. A call that
// takes longer than a heartbeat is abandoned; the next tick tries again.
func (w *Worker) heartbeat(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(max(w.cfg.Heartbeat, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ds := make([]*delivery, 0, len(w.running))
		for d := range w.running {
			ds = append(ds, d)
		}
		w.mu.Unlock()
		if len(ds) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, max(w.cfg.Heartbeat, 100*time.Millisecond))
		lost, err := w.q.extend(cctx, w.cfg.Consumer, ds)
		cancel()
		if err != nil {
			w.redisErrors.Inc()
			continue
		}
		w.mu.Lock()
		for i, d := range ds {
			if lost[i] {
				if c := w.running[d]; c != nil {
					c()
				}
			}
		}
		w.mu.Unlock()
	}
}
