package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// QueueBenchConfig configures Queue.
type QueueBenchConfig struct {
	// Jobs is how many jobs each system runs. The zero value means 20 000.
	Jobs int
	// Workers is the handler concurrency of each system. The zero value means 4.
	Workers int
	// Producers is the number of goroutines enqueuing. The zero value means 8.
	Producers int
	// Prefix starts every tickstash key the benchmark writes, and names the asynq queue;
	// all are deleted at the end. The zero value means "tsbench-" and 8 random hex digits.
	Prefix string
}

// QueueCase is the outcome of one system's run.
type QueueCase struct {
	Name      string
	Jobs      int
	Elapsed   time.Duration // from the first enqueue to the last acknowledgement
	PerSecond float64       // Jobs / Elapsed
}

// QueueReport is what `tickstash bench queue` prints.
type QueueReport struct {
	Jobs, Workers, Producers int
	Cases                    []QueueCase
	// VsAsynq is tickstash jobs/s ÷ asynq jobs/s; target ≥ 2.
	VsAsynq float64
}

const (
	caseQueueOurs  = "tickstash analysis queue (Streams consumer group)"
	caseQueueAsynq = "hibiken/asynq v0.26"
)

// Queue measures jobs per second end to end (enqueue → no-op handler → acknowledged)
// through tickstash's analysis queue and, in the same run on the same Redis, through
// github.com/hibiken/asynq with the same number of producers and the same handler
// concurrency. Every job is for a distinct target, so none is coalesced. Progress lines
// go to progress (nil: discarded). Keys are deleted before it returns (tickstash's under
// Prefix, asynq's queue named Prefix). It returns an error if Redis fails, a job is
// lost, or ctx ends.
func Queue(ctx context.Context, rdb redis.UniversalClient, cfg QueueBenchConfig, progress io.Writer) (QueueReport, error) {
	if cfg.Jobs <= 0 {
		cfg.Jobs = 20000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Producers <= 0 {
		cfg.Producers = 8
	}
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix("tsbench")
	}
	if progress == nil {
		progress = io.Discard
	}
	rep := QueueReport{Jobs: cfg.Jobs, Workers: cfg.Workers, Producers: cfg.Producers}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		insp := asynq.NewInspectorFromRedisClient(rdb)
		_ = insp.DeleteQueue(cfg.Prefix, true)
		for _, pattern := range []string{cfg.Prefix + ":*", "asynq:{" + cfg.Prefix + "}*"} {
			if err := redisconn.DeleteKeys(cctx, rdb, pattern); err != nil {
				fmt.Fprintf(progress, "clean up %s: %v\n", pattern, err)
			}
		}
	}()

	ours, err := benchOurQueue(ctx, rdb, cfg)
	if err != nil {
		return rep, err
	}
	fmt.Fprintf(progress, "%s: %d jobs in %v, %.0f jobs/s\n", ours.Name, ours.Jobs, ours.Elapsed.Round(time.Millisecond), ours.PerSecond)
	theirs, err := benchAsynq(ctx, rdb, cfg)
	if err != nil {
		return rep, err
	}
	fmt.Fprintf(progress, "%s: %d jobs in %v, %.0f jobs/s\n", theirs.Name, theirs.Jobs, theirs.Elapsed.Round(time.Millisecond), theirs.PerSecond)
	rep.Cases = []QueueCase{ours, theirs}
	rep.VsAsynq = ours.PerSecond / theirs.PerSecond
	return rep, nil
}

// produce runs cfg.Producers goroutines that call enqueue for job numbers 0..Jobs-1.
func produce(ctx context.Context, cfg QueueBenchConfig, enqueue func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Producers)
	for range cfg.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Jobs || ctx.Err() != nil {
					return
				}
				if err := enqueue(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitDrained polls until handled reaches jobs and empty reports true.
func waitDrained(ctx context.Context, jobs int, handled *atomic.Int64, empty func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if handled.Load() >= int64(jobs) {
			ok, err := empty(ctx)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: queue: %d of %d jobs handled after 5 minutes", handled.Load(), jobs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func benchSymbol(i int) market.Symbol { return market.Symbol("B" + strconv.Itoa(i) + "-USD") }

func benchOurQueue(ctx context.Context, rdb redis.UniversalClient, cfg QueueBenchConfig) (QueueCase, error) {
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: cfg.Prefix, MaxLen: cfg.Jobs + 1000}, nil)
	var handled atomic.Int64
	w := analysis.NewWorker(q, nil, nil, analysis.WorkerConfig{Concurrency: cfg.Workers,
		Handler: func(context.Context, analysis.Job) error { handled.Add(1); return nil }}, nil, nil)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()

	start := time.Now()
	err := produce(ctx, cfg, func(ctx context.Context, i int) error {
		_, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: "bench", Symbol: benchSymbol(i), Interval: market.Interval1m})
		return err
	})
	if err != nil {
		return QueueCase{}, fmt.Errorf("bench: queue: enqueue: %w", err)
	}
	// Acknowledged entries are deleted, so an empty stream means every job is acked.
	err = waitDrained(ctx, cfg.Jobs, &handled, func(ctx context.Context) (bool, error) {
		n, err := q.Length(ctx)
		return n == 0, err
	})
	if err != nil {
		return QueueCase{}, err
	}
	el := time.Since(start)
	return QueueCase{Name: caseQueueOurs, Jobs: cfg.Jobs, Elapsed: el, PerSecond: float64(cfg.Jobs) / el.Seconds()}, nil
}

func benchAsynq(ctx context.Context, rdb redis.UniversalClient, cfg QueueBenchConfig) (QueueCase, error) {
	var handled atomic.Int64
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: cfg.Workers,
		Queues:      map[string]int{cfg.Prefix: 1},
		// asynq sleeps this long when its queues are empty; 1s by default would only
		// measure the sleep at the start of the run.
		TaskCheckInterval: 10 * time.Millisecond,
		LogLevel:          asynq.ErrorLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(context.Context, *asynq.Task) error { handled.Add(1); return nil })
	if err := srv.Start(mux); err != nil {
		return QueueCase{}, fmt.Errorf("bench: queue: start asynq: %w", err)
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)

	start := time.Now()
	err := produce(ctx, cfg, func(ctx context.Context, i int) error {
		// The same information our job carries: exchange, symbol, interval.
		payload := []byte(`{"exchange":"bench","symbol":"` + string(benchSymbol(i)) + `","interval":"1m"}`)
		_, err := client.EnqueueContext(ctx, asynq.NewTask("noop", payload), asynq.Queue(cfg.Prefix), asynq.MaxRetry(0))
		return err
	})
	if err != nil {
		return QueueCase{}, fmt.Errorf("bench: queue: asynq enqueue: %w", err)
	}
	err = waitDrained(ctx, cfg.Jobs, &handled, func(ctx context.Context) (bool, error) {
		info, err := insp.GetQueueInfo(cfg.Prefix)
		if err != nil {
			return false, err
		}
		return info.Active == 0 && info.Pending == 0, nil
	})
	if err != nil {
		return QueueCase{}, err
	}
	el := time.Since(start)
	return QueueCase{Name: caseQueueAsynq, Jobs: cfg.Jobs, Elapsed: el, PerSecond: float64(cfg.Jobs) / el.Seconds()}, nil
}

// Markdown renders the report as a table plus the target, for BENCHMARKS.md.
func (r QueueReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs per system, %d producers, handler concurrency %d, no-op handler; "+
		"time from the first enqueue to the last acknowledgement.\n\n", r.Jobs, r.Producers, r.Workers)
	b.WriteString("| queue | jobs | elapsed | jobs/s |\n|---|---:|---:|---:|\n")
	for _, c := range r.Cases {
		fmt.Fprintf(&b, "| %s | %d | %v | %.0f |\n", c.Name, c.Jobs, c.Elapsed.Round(time.Millisecond), c.PerSecond)
	}
	verdict := "met"
	if r.VsAsynq < 2 {
		verdict = "NOT met"
	}
	fmt.Fprintf(&b, "\ntickstash ÷ asynq: %.2fx (target ≥ 2x: %s)\n", r.VsAsynq, verdict)
	return b.String()
}
