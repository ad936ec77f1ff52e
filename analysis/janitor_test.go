package analysis

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/market"
)

// consumers returns the names of the consumers in q's group, sorted.
func consumers(tb testing.TB, q *Queue) []string {
	tb.Helper()
	cs, err := q.rdb.XInfoConsumers(context.Background(), q.keys.stream(), q.cfg.Group).Result()
	if err != nil {
		tb.Fatalf("XINFO CONSUMERS: %v", err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// TestWorkerRestartsLeaveNoConsumers starts and cleanly stops 24 workers one after the
// other, each running a job: the group ends with no consumer (it used to keep 24).
func TestWorkerRestartsLeaveNoConsumers(t *testing.T) {
	q, qreg := newTestQueue(t, nil, QueueConfig{})
	reg := prometheus.NewRegistry()
	for i := range 24 {
		id := mustEnqueue(t, q, spec("R"+strconv.Itoa(i)+"-USD"))
		w := NewWorker(q, nil, nil, WorkerConfig{PollInterval: 10 * time.Millisecond,
			Handler: func(context.Context, Job) error { return nil }}, nil, reg)
		stop := startWorker(t, w)
		waitState(t, q, id, JobDone)
		if !slices.Contains(consumers(t, q), w.Consumer()) {
			t.Fatalf("restart %d: running worker %s is not in the group", i, w.Consumer())
		}
		stop()
		if cs := consumers(t, q); len(cs) != 0 {
			t.Fatalf("restart %d: consumers %v left in the group after a clean stop", i, cs)
		}
		reg = prometheus.NewRegistry()
	}
	if n, err := testutil.GatherAndCount(qreg, "tickstash_analysis_queue_consumers"); err != nil || n != 1 {
		t.Fatalf("consumers gauge: %d series, %v", n, err)
	}
	if err := testutil.GatherAndCompare(qreg, strings.NewReader("# HELP tickstash_analysis_queue_consumers Consumers in the queue's group: live workers plus dead ones not yet removed by a janitor.\n# TYPE tickstash_analysis_queue_consumers gauge\ntickstash_analysis_queue_consumers 0\n"), "tickstash_analysis_queue_consumers"); err != nil {
		t.Error(err)
	}
}

// TestRemoveConsumersKeepsPendingOnes checks the janitor script: a consumer holding a
// pending entry stays whatever its idle time (removing it would drop the entry), one
// holding none goes once idle long enough, and the caller's own consumer is kept.
func TestRemoveConsumersKeepsPendingOnes(t *testing.T) {
	ctx := context.Background()
	q, _ := newTestQueue(t, nil, QueueConfig{})
	mustEnqueue(t, q, spec("BTC-USD"))
	if ds := mustRead(t, q, "holder", 10); len(ds) != 1 {
		t.Fatalf("holder read %d jobs, want 1", len(ds))
	}
	for _, c := range []string{"empty", "self"} {
		if err := q.rdb.XGroupCreateConsumer(ctx, q.keys.stream(), q.cfg.Group, c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := q.removeConsumers(ctx, time.Hour, ""); err != nil || len(got) != 0 {
		t.Fatalf("removeConsumers(idle 1h) = %v, %v; want nothing removed", got, err)
	}
	got, err := q.removeConsumers(ctx, 0, "self")
	if err != nil || !slices.Equal(got, []string{"empty"}) {
		t.Fatalf("removeConsumers = %v, %v; want [empty]", got, err)
	}
	if cs := consumers(t, q); !slices.Equal(cs, []string{"holder", "self"}) {
		t.Fatalf("consumers %v, want [holder self]", cs)
	}
	// A queue whose stream does not exist yet removes nothing and fails nothing.
	q2, _ := newTestQueue(t, nil, QueueConfig{})
	if got, err := q2.removeConsumers(ctx, 0, ""); err != nil || len(got) != 0 {
		t.Fatalf("removeConsumers on no stream = %v, %v", got, err)
	}
}

// TestJanitorRemovesDeadConsumer lets a consumer take a job and die; a live worker
// reclaims the job after the lease, and its janitor then removes the dead consumer, but
// not before its entry is reclaimed.
func TestJanitorRemovesDeadConsumer(t *testing.T) {
	const lease = 400 * time.Millisecond
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: lease, ConsumerIdle: 100 * time.Millisecond})
	id := mustEnqueue(t, q, spec("ETH-USD"))
	if ds := mustRead(t, q, "dead", 1); len(ds) != 1 {
		t.Fatal("the doomed consumer read no job")
	}
	var mu sync.Mutex
	var seenWhileHeld []string
	reg := prometheus.NewRegistry()
	w := NewWorker(q, nil, nil, WorkerConfig{Consumer: "live", PollInterval: 10 * time.Millisecond,
		Handler: func(context.Context, Job) error { return nil }}, nil, reg)
	start := time.Now()
	startWorker(t, w)
	// While the lease runs, the dead consumer holds the job and must stay.
	for time.Since(start) < lease/2 {
		mu.Lock()
		seenWhileHeld = consumers(t, q)
		mu.Unlock()
		if !slices.Contains(seenWhileHeld, "dead") {
			if st := mustStatus(t, q, id); st.State != JobDone {
				t.Fatalf("consumer removed while holding job %s (%s)", id, st.State)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitState(t, q, id, JobDone)
	testenv.WaitFor(t, "the dead consumer removed", func() bool {
		return slices.Equal(consumers(t, q), []string{"live"})
	})
	if v := testutil.ToFloat64(w.removed.WithLabelValues("idle")); v != 1 {
		t.Errorf("removed idle = %v, want 1", v)
	}
	if st := mustStatus(t, q, id); st.Attempts != 2 {
		t.Errorf("job attempts %d, want 2 (the dead consumer's and the reclaim)", st.Attempts)
	}
}

// failingPublisher fails the first n publishes, then records the ids it is given.
type failingPublisher struct {
	mu    sync.Mutex
	fails int
	ids   []string
}

func (p *failingPublisher) PublishUpdate(_ context.Context, u *Result) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, u.MsgID())
	if p.fails > 0 {
		p.fails--
		return false, errors.New("injected: stream did not acknowledge")
	}
	return len(p.ids) > 1, nil
}

// TestWorkerRetriesPublishInPlace: an update the stream did not take is published again,
// with the same message id, before the job is acknowledged, without using up one of the
// job's deliveries.
func TestWorkerRetriesPublishInPlace(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	candles := testCandles("BTC-USDT", 60)
	store := &memCandles{m: map[market.Symbol][]market.Candle{"BTC-USDT": candles}}
	pub := &failingPublisher{fails: 2}
	w := NewWorker(q, store, pub, WorkerConfig{PollInterval: 10 * time.Millisecond, Analyzers: map[string][]string{"default": {"sma:5"}}}, nil, prometheus.NewRegistry())
	startWorker(t, w)
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	st := waitState(t, q, id, JobDone)
	if st.Attempts != 1 {
		t.Errorf("attempts %d, want 1", st.Attempts)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	want := Result{Analyzer: "default", Exchange: "binance", Symbol: "BTC-USDT", Interval: market.Interval1m, CandleTime: candles[59].OpenTime}
	if len(pub.ids) != 3 || pub.ids[0] != want.MsgID() || pub.ids[2] != want.MsgID() {
		t.Errorf("published ids %v, want %s three times", pub.ids, want.MsgID())
	}
	if v := testutil.ToFloat64(w.publishErrors); v != 2 {
		t.Errorf("publish errors = %v, want 2", v)
	}
	if v := testutil.ToFloat64(w.duplicates); v != 1 {
		t.Errorf("duplicates = %v, want 1", v)
	}
}

// TestWorkerRetriesJobWhenPublishTimesOut: a publish still failing at the job's timeout
// fails the delivery; the job is retried and its retry republishes the same id.
func TestWorkerRetriesJobWhenPublishTimesOut(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{BackoffBase: 10 * time.Millisecond})
	candles := testCandles("BTC-USDT", 60)
	store := &memCandles{m: map[market.Symbol][]market.Candle{"BTC-USDT": candles}}
	pub := &failingPublisher{fails: 3} // 100ms + 200ms of waits exceed the 250ms timeout
	w := NewWorker(q, store, pub, WorkerConfig{PollInterval: 10 * time.Millisecond, JobTimeout: 250 * time.Millisecond,
		Analyzers: map[string][]string{"default": {"sma:5"}}}, nil, prometheus.NewRegistry())
	startWorker(t, w)
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	if st := waitState(t, q, id, JobDone); st.Attempts != 2 {
		t.Errorf("attempts %d, want 2", st.Attempts)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, got := range pub.ids {
		if got != pub.ids[0] {
			t.Errorf("published ids %v, want one id", pub.ids)
			break
		}
	}
}
