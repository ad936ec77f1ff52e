package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// The crash-recovery case runs a worker in a child process: the benchmark's own binary
// started again with these variables set, which RunQueueChild turns into a worker whose
// handler announces its job on stdout and never returns. SIGKILL is the only way out.
const (
	childEnv       = "TICKSTASH_BENCH_QUEUE_CHILD" // "ours" or "asynq"
	childRedisEnv  = childEnv + "_REDIS_URL"
	childPrefixEnv = childEnv + "_PREFIX" // tickstash's key prefix, or asynq's queue
	childStarted   = "STARTED "
)

// RunQueueChild runs the crash-recovery benchmark's doomed worker and does not return
// when this process was started as one (see Queue); otherwise it returns at once. Call
// it first thing in main and in TestMain of every binary that runs the queue benchmark.
func RunQueueChild() {
	kind := os.Getenv(childEnv)
	if kind == "" {
		return
	}
	err := runChild(kind, os.Getenv(childRedisEnv), os.Getenv(childPrefixEnv))
	fmt.Fprintln(os.Stderr, "bench queue child:", err)
	os.Exit(2)
}

func runChild(kind, redisURL, prefix string) error {
	announce := func(id string) {
		fmt.Println(childStarted + id)
	}
	switch kind {
	case "ours":
		rdb, err := redisconn.Open(redisURL)
		if err != nil {
			return err
		}
		q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
		w := analysis.NewWorker(q, nil, nil, analysis.WorkerConfig{Concurrency: 1, Prefetch: -1,
			Handler: func(ctx context.Context, job analysis.Job) error {
				announce(job.ID)
				select {}
			}}, nil, nil)
		return w.Run(context.Background())
	case "asynq":
		// The same client as the benchmark's (a cluster URL gives a cluster client):
		// asynq's own URI parser knows one node only.
		rdb, err := redisconn.Open(redisURL)
		if err != nil {
			return err
		}
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{prefix: 1},
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
		mux := asynq.NewServeMux()
		mux.HandleFunc("noop", func(ctx context.Context, t *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			announce(id)
			select {}
		})
		return srv.Run(mux)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// QueueRecovery is how long a job took to complete in another worker after its worker's
// process was killed mid-job.
type QueueRecovery struct {
	Name string
	// Elapsed is from the SIGKILL to the rescuing worker's handler finishing the job;
	// meaningful when Recovered.
	Elapsed time.Duration
	// Recovered is false when the job was not done within Wait.
	Recovered bool
	Wait      time.Duration
}

func (r QueueRecovery) String() string {
	if !r.Recovered {
		return ">" + r.Wait.String()
	}
	return r.Elapsed.Round(10 * time.Millisecond).String()
}

// startChild starts this binary as a doomed worker and returns it with the job id it
// announced once it runs job.
func startChild(ctx context.Context, kind, redisURL, prefix string) (*exec.Cmd, <-chan string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"="+kind, childRedisEnv+"="+redisURL, childPrefixEnv+"="+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s worker process: %w", kind, err)
	}
	started := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), childStarted); ok {
				started <- id
			}
		}
	}()
	return cmd, started, nil
}

// awaitStart waits for the child to announce job id.
func awaitStart(ctx context.Context, started <-chan string, id string) error {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-started:
			if got == id {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("the worker process did not start job %s within 30s", id)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// killAndWait kills the child with SIGKILL, then waits until done is closed or wait has
// passed since the kill.
func killAndWait(ctx context.Context, cmd *exec.Cmd, done <-chan time.Time, r *QueueRecovery) error {
	if err := cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill the worker process: %w", err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	select {
	case at := <-done:
		r.Elapsed, r.Recovered = at.Sub(killed), true
	case <-time.After(r.Wait - time.Since(killed)):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// recoverOurs measures tickstash's queue with its defaults (lease 3s, heartbeat 1s): a
// worker process takes the job and is killed; a worker in this process, started just
// before the kill, completes it.
func recoverOurs(ctx context.Context, rdb redis.UniversalClient, redisURL, prefix string, wait time.Duration) (QueueRecovery, error) {
	r := QueueRecovery{Name: caseQueueOurs, Wait: wait}
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	cmd, started, err := startChild(ctx, "ours", redisURL, prefix)
	if err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill() }()
	id, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: "bench", Symbol: "CRASH-USD", Interval: market.Interval1m})
	if err != nil {
		return r, err
	}
	if err := awaitStart(ctx, started, id); err != nil {
		return r, err
	}
	done := make(chan time.Time, 1)
	w := analysis.NewWorker(q, nil, nil, analysis.WorkerConfig{Handler: func(_ context.Context, job analysis.Job) error {
		if job.ID == id {
			select {
			case done <- time.Now():
			default:
			}
		}
		return nil
	}}, nil, nil)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = w.Run(wctx) }()
	err = killAndWait(ctx, cmd, done, &r)
	return r, err
}

// recoverAsynq measures asynq's own recovery with its defaults: a server process takes
// the task and is killed; a server in this process, started just before the kill, is
// left to recover it (its recoverer retries tasks whose lease expired).
func recoverAsynq(ctx context.Context, rdb redis.UniversalClient, redisURL, queue string, wait time.Duration) (QueueRecovery, error) {
	r := QueueRecovery{Name: caseQueueAsynq, Wait: wait}
	cmd, started, err := startChild(ctx, "asynq", redisURL, queue)
	if err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill() }()
	client := asynq.NewClientFromRedisClient(rdb)
	info, err := client.EnqueueContext(ctx, asynq.NewTask("noop", []byte(`{"exchange":"bench","symbol":"CRASH-USD","interval":"1m"}`)), asynq.Queue(queue))
	if err != nil {
		return r, err
	}
	if err := awaitStart(ctx, started, info.ID); err != nil {
		return r, err
	}
	done := make(chan time.Time, 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(ctx context.Context, _ *asynq.Task) error {
		if id, _ := asynq.GetTaskID(ctx); id == info.ID {
			select {
			case done <- time.Now():
			default:
			}
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return r, fmt.Errorf("start asynq: %w", err)
	}
	defer srv.Shutdown()
	err = killAndWait(ctx, cmd, done, &r)
	return r, err
}

var errNoRedisURL = errors.New("bench: queue: crash recovery needs QueueBenchConfig.RedisURL for its worker process")
