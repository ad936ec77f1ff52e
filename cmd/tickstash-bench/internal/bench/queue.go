package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
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
	// Jobs is how many jobs each system runs per round. The zero value means 20 000.
	Jobs int
	// Workers is the handler concurrency of each system. The zero value means 4.
	Workers int
	// Producers is the number of goroutines enqueuing. The zero value means 8.
	Producers int
	// Rounds is how many times each system runs, alternating which goes first. The zero
	// value means 5.
	Rounds int
	// RecoveryWait caps the wait for a killed worker's job in the crash-recovery case;
	// the zero value means 90s, a negative one skips the case.
	RecoveryWait time.Duration
	// RedisURL is the Redis the crash-recovery case's worker processes connect to (the
	// one rdb is a client of); "" skips the case.
	RedisURL string
	// Prefix starts every tickstash key the benchmark writes, and every asynq queue's
	// name; all are deleted at the end. The zero value means "tsbench-" and 8 random hex
	// digits.
	Prefix string
}

// QueueCase is the outcome of one system's run.
type QueueCase struct {
	Name      string
	Jobs      int
	Elapsed   time.Duration // from the first enqueue to the last acknowledgement
	PerSecond float64       // Jobs / Elapsed
}

// QueueRound is one round: each system's run and their ratio.
type QueueRound struct {
	Ours, Asynq QueueCase
	// AsynqFirst says which ran first in the round.
	AsynqFirst bool
	// VsAsynq is tickstash jobs/s ÷ asynq jobs/s.
	VsAsynq float64
}

// QueueReport is what `tickstash bench queue` prints.
type QueueReport struct {
	Jobs, Workers, Producers int
	Rounds                   []QueueRound
	// Recovery holds the crash-recovery case, tickstash first; empty when skipped.
	Recovery []QueueRecovery
}

// Ratios returns the rounds' tickstash ÷ asynq ratios, sorted.
func (r QueueReport) Ratios() []float64 {
	out := make([]float64, len(r.Rounds))
	for i, rd := range r.Rounds {
		out[i] = rd.VsAsynq
	}
	sort.Float64s(out)
	return out
}

// median returns the median of sorted xs (0 for none).
func median(xs []float64) float64 {
	n := len(xs)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// rates returns the sorted jobs/s of one system over the rounds.
func (r QueueReport) rates(ours bool) []float64 {
	out := make([]float64, len(r.Rounds))
	for i, rd := range r.Rounds {
		if ours {
			out[i] = rd.Ours.PerSecond
		} else {
			out[i] = rd.Asynq.PerSecond
		}
	}
	sort.Float64s(out)
	return out
}

const (
	caseQueueOurs  = "tickstash analysis queue (Streams consumer group)"
	caseQueueAsynq = "hibiken/asynq v0.26"
)

// Queue measures jobs per second end to end (enqueue → no-op handler → acknowledged)
// through tickstash's analysis queue and, in the same run on the same Redis, through
// github.com/hibiken/asynq with the same number of producers and the same handler
// concurrency, in cfg.Rounds rounds that alternate which system goes first. Every job
// is for a distinct target, so none is coalesced. Then, unless skipped, it measures
// crash recovery: a worker process (this binary again, see RunQueueChild) takes a job
// and is killed with SIGKILL mid-job; the time until a worker in this process has done
// the job, with each system's default lease and recovery settings. A tenth of Jobs runs
// through each system first, unmeasured, to warm up. Progress lines go to
// progress (nil: discarded). Keys are deleted before it returns (tickstash's under
// Prefix, asynq's queues named Prefix...). It returns an error if Redis fails, a job is
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
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.RecoveryWait == 0 {
		cfg.RecoveryWait = 90 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix("tsbench")
	}
	if progress == nil {
		progress = io.Discard
	}
	rep := QueueReport{Jobs: cfg.Jobs, Workers: cfg.Workers, Producers: cfg.Producers}
	var asynqQueues []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		insp := asynq.NewInspectorFromRedisClient(rdb)
		for _, name := range asynqQueues {
			_ = insp.DeleteQueue(name, true)
		}
		for _, pattern := range []string{cfg.Prefix + ":*", "asynq:{" + cfg.Prefix + "*"} {
			if err := redisconn.DeleteKeys(cctx, rdb, pattern); err != nil {
				fmt.Fprintf(progress, "clean up %s: %v\n", pattern, err)
			}
		}
		// DeleteQueue refuses a queue with an active task: the killed worker's, which
		// asynq has not recovered yet. Its keys are gone; unlist it too.
		for _, name := range asynqQueues {
			_ = rdb.SRem(cctx, "asynq:queues", name).Err()
		}
	}()

	// A warm-up of each system, unmeasured: the first to run in this process would
	// otherwise also pay for dialing the shared connection pool, loading scripts and
	// growing the heap, which the other then finds done.
	warm := cfg
	warm.Jobs = max(cfg.Jobs/10, 1)
	fmt.Fprintf(progress, "warm-up: %d jobs through each system, not measured\n", warm.Jobs)
	if _, err := benchOurQueue(ctx, rdb, warm, cfg.Prefix+":warm"); err != nil {
		return rep, fmt.Errorf("bench: queue: warm-up: %w", err)
	}
	if err := redisconn.DeleteKeys(ctx, rdb, cfg.Prefix+":warm:*"); err != nil {
		return rep, err
	}
	asynqQueues = append(asynqQueues, cfg.Prefix+"-warm")
	if _, err := benchAsynq(ctx, rdb, warm, cfg.Prefix+"-warm"); err != nil {
		return rep, fmt.Errorf("bench: queue: asynq warm-up: %w", err)
	}

	for i := range cfg.Rounds {
		rd := QueueRound{AsynqFirst: i%2 == 1}
		ours := func() error {
			prefix := fmt.Sprintf("%s:r%d", cfg.Prefix, i)
			c, err := benchOurQueue(ctx, rdb, cfg, prefix)
			rd.Ours = c
			// The round's job records (kept a day for Status) go now, untimed, so that
			// rounds do not pile up keys: asynq deletes its tasks when done.
			if derr := redisconn.DeleteKeys(ctx, rdb, prefix+":*"); derr != nil && err == nil {
				err = derr
			}
			fmt.Fprintf(progress, "round %d: %s: %d jobs in %v, %.0f jobs/s\n", i+1, c.Name, c.Jobs, c.Elapsed.Round(time.Millisecond), c.PerSecond)
			return err
		}
		theirs := func() error {
			name := fmt.Sprintf("%s-r%d", cfg.Prefix, i)
			asynqQueues = append(asynqQueues, name)
			c, err := benchAsynq(ctx, rdb, cfg, name)
			rd.Asynq = c
			fmt.Fprintf(progress, "round %d: %s: %d jobs in %v, %.0f jobs/s\n", i+1, c.Name, c.Jobs, c.Elapsed.Round(time.Millisecond), c.PerSecond)
			return err
		}
		first, second := ours, theirs
		if rd.AsynqFirst {
			first, second = theirs, ours
		}
		if err := first(); err != nil {
			return rep, err
		}
		if err := second(); err != nil {
			return rep, err
		}
		rd.VsAsynq = rd.Ours.PerSecond / rd.Asynq.PerSecond
		rep.Rounds = append(rep.Rounds, rd)
	}

	if cfg.RecoveryWait < 0 {
		return rep, nil
	}
	if cfg.RedisURL == "" {
		return rep, errNoRedisURL
	}
	fmt.Fprintf(progress, "crash recovery: killing a worker process mid-job (waiting up to %v)\n", cfg.RecoveryWait)
	ours, err := recoverOurs(ctx, rdb, cfg.RedisURL, cfg.Prefix+":crash", cfg.RecoveryWait)
	if err != nil {
		return rep, fmt.Errorf("bench: queue: crash recovery: %w", err)
	}
	fmt.Fprintf(progress, "crash recovery: %s: %v\n", ours.Name, ours)
	queue := cfg.Prefix + "-crash"
	asynqQueues = append(asynqQueues, queue)
	theirs, err := recoverAsynq(ctx, rdb, cfg.RedisURL, queue, cfg.RecoveryWait)
	if err != nil {
		return rep, fmt.Errorf("bench: queue: asynq crash recovery: %w", err)
	}
	fmt.Fprintf(progress, "crash recovery: %s: %v\n", theirs.Name, theirs)
	rep.Recovery = []QueueRecovery{ours, theirs}
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

func benchOurQueue(ctx context.Context, rdb redis.UniversalClient, cfg QueueBenchConfig, prefix string) (QueueCase, error) {
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix, MaxLen: cfg.Jobs + 1000}, nil)
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

func benchAsynq(ctx context.Context, rdb redis.UniversalClient, cfg QueueBenchConfig, queue string) (QueueCase, error) {
	var handled atomic.Int64
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: cfg.Workers,
		Queues:      map[string]int{queue: 1},
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
		_, err := client.EnqueueContext(ctx, asynq.NewTask("noop", payload), asynq.Queue(queue), asynq.MaxRetry(0))
		return err
	})
	if err != nil {
		return QueueCase{}, fmt.Errorf("bench: queue: asynq enqueue: %w", err)
	}
	err = waitDrained(ctx, cfg.Jobs, &handled, func(ctx context.Context) (bool, error) {
		info, err := insp.GetQueueInfo(queue)
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

// Markdown renders the report as tables plus the targets, for BENCHMARKS.md.
func (r QueueReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs per system and round, %d producers, handler concurrency %d, no-op handler; "+
		"time from the first enqueue to the last acknowledgement; %d rounds, alternating which system runs first, "+
		"after an unmeasured warm-up of %d jobs through each.\n\n",
		r.Jobs, r.Producers, r.Workers, len(r.Rounds), max(r.Jobs/10, 1))
	b.WriteString("| round | tickstash jobs/s | asynq jobs/s | tickstash ÷ asynq |\n|---:|---:|---:|---:|\n")
	for i, rd := range r.Rounds {
		first := "tickstash first"
		if rd.AsynqFirst {
			first = "asynq first"
		}
		fmt.Fprintf(&b, "| %d (%s) | %.0f | %.0f | %.2fx |\n", i+1, first, rd.Ours.PerSecond, rd.Asynq.PerSecond, rd.VsAsynq)
	}
	ours, theirs, ratios := r.rates(true), r.rates(false), r.Ratios()
	if len(ratios) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "| **median** (min–max) | **%.0f** (%.0f–%.0f) | **%.0f** (%.0f–%.0f) | **%.2fx** (%.2f–%.2f) |\n",
		median(ours), ours[0], ours[len(ours)-1], median(theirs), theirs[0], theirs[len(theirs)-1],
		median(ratios), ratios[0], ratios[len(ratios)-1])
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(&b, "\nTargets: median ≥ 3x asynq: %s (%.2fx); every round ≥ 2x: %s (lowest %.2fx).\n",
		verdict(median(ratios) >= 3), median(ratios), verdict(ratios[0] >= 2), ratios[0])
	if len(r.Recovery) > 0 {
		b.WriteString("\nCrash recovery: a worker process takes a job and is killed with SIGKILL mid-job; time from the kill " +
			"until a worker started in the benchmark's process just before the kill has done the job, each system with " +
			"its default lease and recovery settings.\n\n| queue | killed worker's job done elsewhere after |\n|---|---:|\n")
		for _, rc := range r.Recovery {
			fmt.Fprintf(&b, "| %s | %s |\n", rc.Name, rc)
		}
	}
	return b.String()
}
