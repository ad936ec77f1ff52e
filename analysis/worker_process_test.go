package analysis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// helperEnv makes the test binary run as a worker process (see helperWorker) instead of
// the tests.
const helperEnv = "TICKSTASH_ANALYSIS_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperWorker()
		return
	}
	testenv.Main(m)
}

// helperWorker runs one worker whose handler announces each job on stdout and then
// hangs, until the parent test kills the process. The queue prefix and lease come from
// the environment.
func helperWorker() {
	rdb, err := redisconn.Open(redistest.URL())
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	lease, _ := time.ParseDuration(os.Getenv(helperEnv + "_LEASE"))
	q := NewQueue(rdb, QueueConfig{Prefix: os.Getenv(helperEnv + "_PREFIX"), Lease: lease}, nil)
	w := NewWorker(q, nil, nil, WorkerConfig{Consumer: "doomed", PollInterval: 10 * time.Millisecond,
		Handler: func(ctx context.Context, job Job) error {
			fmt.Println("STARTED", job.ID)
			select {} // a job that never ends: only SIGKILL stops it
		}}, nil, nil)
	_ = w.Run(context.Background())
}

func TestReclaimAfterWorkerProcessKilled(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	const lease = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	q := NewQueue(rdb, QueueConfig{Prefix: prefix, Lease: lease}, reg)
	id := mustEnqueue(t, q, spec("BTC-USDT"))

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperEnv+"_PREFIX="+prefix, helperEnv+"_LEASE="+lease.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			line <- s.Text()
		}
	}()
	select {
	case l := <-line:
		if l != "STARTED "+id {
			t.Fatalf("helper worker said %q, want STARTED %s", l, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the helper worker did not start the job")
	}

	// A second worker runs alongside. While the helper lives, its heartbeat extends the
	// lease, so the job is not taken from it even after several lease periods.
	var ran atomic.Int32
	w := NewWorker(q, nil, nil, WorkerConfig{Consumer: "survivor", PollInterval: 10 * time.Millisecond,
		Handler: func(ctx context.Context, job Job) error { ran.Add(1); return nil }}, nil, reg)
	startWorker(t, w)
	time.Sleep(3 * lease)
	if st := mustStatus(t, q, id); st.State != JobRunning || ran.Load() != 0 {
		t.Fatalf("job taken from a live worker: %+v (survivor ran %d)", st, ran.Load())
	}

	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	_ = cmd.Wait()
	st := waitState(t, q, id, JobDone)
	if since := time.Since(killed); since < lease/2 {
		t.Errorf("reclaimed %v after the kill, before the lease could expire", since)
	}
	if st.Attempts != 2 || ran.Load() != 1 {
		t.Errorf("status %+v, survivor ran %d times; want done on the second delivery, run once", st, ran.Load())
	}
	if got := testutil.ToFloat64(q.m.reclaimed); got != 1 {
		t.Errorf("reclaimed counter = %v, want 1", got)
	}
}

func TestWorkerSurvivesRedisRestart(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb, err := redisconn.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	q, _ := newTestQueue(t, rdb, QueueConfig{Prefix: "restart", Lease: time.Second})
	started := make(chan string, 10)
	w := NewWorker(q, nil, nil, WorkerConfig{PollInterval: 20 * time.Millisecond,
		Handler: func(ctx context.Context, job Job) error {
			started <- job.ID
			time.Sleep(200 * time.Millisecond)
			return nil
		}}, nil, nil)
	stop := startWorker(t, w)
	mustEnqueue(t, q, spec("A-USD"))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("job did not start")
	}

	srv.Stop() // mid-job: the job's settlement fails and is retried
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = q.Enqueue(ctx, spec("B-USD"))
	cancel()
	if err == nil {
		t.Fatal("Enqueue succeeded with Redis down")
	}
	time.Sleep(300 * time.Millisecond)
	srv.Start() // an empty Redis: the test server keeps nothing on disk

	// The worker recreates its consumer group and carries on.
	var id string
	testenv.WaitFor(t, "Redis to accept jobs again", func() bool {
		id, err = q.Enqueue(context.Background(), spec("C-USD"))
		return err == nil
	})
	waitState(t, q, id, JobDone)
	if got := testutil.ToFloat64(w.redisErrors); got == 0 {
		t.Error("the outage left no trace in the worker's Redis error counter")
	}
	stop()
}

func TestQueueOnCluster(t *testing.T) {
	rdb, err := redisconn.Open(redistest.StartCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	clock := newFakeClock()
	q, reg := newTestQueue(t, rdb, QueueConfig{Prefix: "cl", Lease: 50 * time.Millisecond, Now: clock.Now, MaxDeliveries: 2})
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if err != nil { // a CROSSSLOT error would surface here
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Coalescing, retry through the delayed set, dead letter and Retry.
	id := mustEnqueue(t, q, spec("A-USD"))
	if again := mustEnqueue(t, q, spec("A-USD")); again != id {
		t.Fatal("not coalesced")
	}
	d := mustRead(t, q, "c1", 1)[0]
	_, err = q.extend(ctx, "c1", []*delivery{&d})
	check("extend", err)
	mustComplete(t, q, settlement{d: &d, out: outRetry, err: "x"})
	clock.Add(time.Hour)
	_, err = q.promote(ctx, 10)
	check("promote", err)
	d = mustRead(t, q, "c1", 1)[0]
	mustComplete(t, q, settlement{d: &d, out: outDead, err: "x"})
	_, err = q.Dead(ctx, 10)
	check("dead", err)
	check("retry", q.Retry(ctx, id))

	// Reclaim after a lost worker, with the delivery cap, and a malformed entry.
	mustRead(t, q, "lost", 1)
	time.Sleep(60 * time.Millisecond)
	_, err = q.reclaim(ctx, "c2", 10)
	check("reclaim", err)

	// The worker's analysis path: fenced result and state, then LatestResult.
	store := &memCandles{m: map[market.Symbol][]market.Candle{"B-USD": testCandles("B-USD", 80)}}
	w := NewWorker(q, store, nil, WorkerConfig{PollInterval: 10 * time.Millisecond}, nil, nil)
	startWorker(t, w)
	bid := mustEnqueue(t, q, JobSpec{Exchange: "binance", Symbol: "B-USD", Interval: market.Interval1m})
	waitState(t, q, bid, JobDone)
	_, err = q.LatestResult(ctx, "binance", "B-USD", market.Interval1m)
	check("latest result", err)
	_, err = q.Status(ctx, id)
	check("status", err)
	mfs, err := reg.Gather()
	check("gather", err)
	for _, mf := range mfs {
		if mf.GetName() == "tickstash_analysis_queue_scrape_errors_total" && mf.GetMetric()[0].GetCounter().GetValue() != 0 {
			t.Fatal("the collector could not read the queue gauges on the cluster")
		}
	}
}
