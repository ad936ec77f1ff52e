package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// testCandles returns n closed 1m candles of binance:sym following a deterministic walk.
func testCandles(sym market.Symbol, n int) []market.Candle {
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	out := make([]market.Candle, n)
	price := 100.0
	for i := range out {
		open := price
		price += 3*math.Sin(float64(i)/5) + float64(i%7) - 3
		hi, lo := math.Max(open, price)+1.5, math.Min(open, price)-1.25
		d := func(f float64) decimal.Decimal { return decimal.NewFromFloat(f).Round(8) }
		vol := d(10 + float64(i%13))
		out[i] = market.Candle{Exchange: "binance", Symbol: sym, Interval: market.Interval1m,
			OpenTime: t0.Add(time.Duration(i) * time.Minute),
			Open:     d(open), High: d(hi), Low: d(lo), Close: d(price), Volume: vol,
			QuoteVolume: vol.Mul(d(price)), Trades: 5, Closed: true}
	}
	return out
}

// memCandles is a CandleReader over a map, for tests that need no Redis candles.
type memCandles struct {
	mu sync.Mutex
	m  map[market.Symbol][]market.Candle
}

func (s *memCandles) LastCandles(_ context.Context, _ market.Exchange, sym market.Symbol, _ market.Interval, n int) ([]market.Candle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[sym]
	return append([]market.Candle(nil), c[max(0, len(c)-n):]...), nil
}

// startWorker runs w until the test ends (or the returned stop is called) and fails the
// test if Run returns an error.
func startWorker(tb testing.TB, w *Worker) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Worker.Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				tb.Errorf("Worker.Run did not return after its context ended")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func waitState(tb testing.TB, q *Queue, id string, want JobState) JobStatus {
	tb.Helper()
	var st JobStatus
	testenv.WaitFor(tb, fmt.Sprintf("job %s to be %s", id, want), func() bool {
		var err error
		st, err = q.Status(context.Background(), id)
		return err == nil && st.State == want
	})
	return st
}

func TestWorkerAnalysesStoresAndPublishes(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	q, _ := newTestQueue(t, rdb, QueueConfig{Prefix: prefix})
	sym := market.Symbol("T" + strings.ToUpper(prefix[3:]) + "-USDT") // a subject of this test's own
	candles := testCandles(sym, 120)
	ctx := context.Background()
	if _, err := store.Write(ctx, &cache.Batch{Candles: candles[:119]}); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS: %v", err)
	}
	defer nc.Close()
	// The update goes to a stream of this test's own; a core NATS subscriber of its
	// subject (a live reader) receives it too.
	as := pipeline.AnalysisStream{Name: "TT_AN_" + strings.ToUpper(prefix[3:]), SubjectPrefix: "tt." + prefix[3:] + ".analysis", Memory: true}
	pub, err := pipeline.NewAnalysisPublisher(ctx, nc, as)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	defer func() { _ = js.DeleteStream(context.Background(), as.Name) }()
	updates := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe(as.Subject("binance", sym, market.Interval1m), updates)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	w := NewWorker(q, store, pub, WorkerConfig{Concurrency: 2, PollInterval: 20 * time.Millisecond}, nil, reg)
	startWorker(t, w)

	// want computes the expected values: the batch kernels over the same closed bars.
	want := func(cs []market.Candle) map[string]float64 {
		var bars indicator.Bars
		for _, c := range cs {
			bars.Append(indicator.Bar{Time: c.OpenTime, Open: c.Open.InexactFloat64(), High: c.High.InexactFloat64(),
				Low: c.Low.InexactFloat64(), Close: c.Close.InexactFloat64(), Volume: c.Volume.InexactFloat64()})
		}
		out := map[string]float64{}
		for _, text := range DefaultIndicators {
			s, err := indicator.ParseSpec(text)
			if err != nil {
				t.Fatal(err)
			}
			cols, err := s.Compute(bars)
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range s.Columns() {
				out[name] = cols[i][bars.Len()-1]
			}
		}
		return out
	}
	check := func(id string, cs []market.Candle, fed int) {
		t.Helper()
		waitState(t, q, id, JobDone)
		got, err := q.LatestResult(ctx, "binance", sym, market.Interval1m)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Close.Equal(cs[len(cs)-1].Close) {
			t.Errorf("result close %s, want the last candle's %s", got.Close, cs[len(cs)-1].Close)
		}
		if got.JobID != id || !got.CandleTime.Equal(cs[len(cs)-1].OpenTime) || got.Candles != fed {
			t.Fatalf("result job %s, candle %v, fed %d; want job %s, candle %v, fed %d",
				got.JobID, got.CandleTime, got.Candles, id, cs[len(cs)-1].OpenTime, fed)
		}
		exp := want(cs)
		if len(got.Values) != len(exp) {
			t.Fatalf("result has %d values, want %d: %v", len(got.Values), len(exp), got.Values)
		}
		for col, v := range exp {
			if got.Values[col] != v {
				t.Errorf("%s = %v, want %v (bit for bit)", col, got.Values[col], v)
			}
		}
		select {
		case m := <-updates:
			var pub Result
			if err := json.Unmarshal(m.Data, &pub); err != nil || pub.JobID != id || pub.Values["rsi_14"] != exp["rsi_14"] {
				t.Fatalf("published update %s (%v), want the result of job %s", m.Data, err, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no update published on NATS")
		}
	}
	id := mustEnqueue(t, q, JobSpec{Exchange: "binance", Symbol: sym, Interval: market.Interval1m, Watermark: candles[118].OpenTime})
	check(id, candles[:119], 119)

	// The next candle resumes the saved streaming state: one candle fed, and the values
	// equal the batch kernels over the whole history.
	if _, err := store.Write(ctx, &cache.Batch{Candles: candles[119:]}); err != nil {
		t.Fatal(err)
	}
	if err := q.CandleClosed(ctx, candles[119]); err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx, id)
	if err != nil || st.State != JobDone {
		t.Fatalf("first job: %+v, %v", st, err)
	}
	var second string
	testenv.WaitFor(t, "the candle-closed job", func() bool {
		r, err := q.LatestResult(ctx, "binance", sym, market.Interval1m)
		second = r.JobID
		return err == nil && r.JobID != id
	})
	check(second, candles, 1)
	// The counter moves when the worker has read the settle call's reply, which may be
	// just after the job shows done in Redis and its update on NATS.
	testenv.WaitFor(t, "the done counter to reach 2", func() bool {
		return testutil.ToFloat64(w.completed.WithLabelValues("done")) == 2
	})
	st2, err := js.Stream(ctx, as.Name)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []market.Candle{candles[118], candles[119]} {
		u := Result{Analyzer: "default", Exchange: "binance", Symbol: sym, Interval: market.Interval1m, CandleTime: c.OpenTime}
		m, err := st2.GetMsg(ctx, uint64(i+1))
		if err != nil || m.Header.Get(jetstream.MsgIDHeader) != u.MsgID() {
			t.Errorf("stream message %d: %v, id %q; want id %q", i+1, err, m.Header.Get(jetstream.MsgIDHeader), u.MsgID())
		}
	}
}

func TestWorkerInsufficientDataAndBadJobs(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	store := &memCandles{m: map[market.Symbol][]market.Candle{"FEW-USDT": testCandles("FEW-USDT", 20)}}
	w := NewWorker(q, store, nil, WorkerConfig{PollInterval: 20 * time.Millisecond,
		Analyzers: map[string][]string{"default": DefaultIndicators, "quick": {"sma:5"}}}, nil, nil)
	ctx := context.Background()

	unknown := mustEnqueue(t, q, spec("NOPE-USDT"))
	few := mustEnqueue(t, q, spec("FEW-USDT"))
	quick := spec("FEW-USDT")
	quick.Analyzer = "quick"
	enough := mustEnqueue(t, q, quick)
	noAnalyzer := spec("FEW-USDT")
	noAnalyzer.Analyzer = "missing"
	missing := mustEnqueue(t, q, noAnalyzer)
	// A job record corrupted behind the queue's back is malformed: dead at once.
	bad := mustEnqueue(t, q, spec("BAD-USDT"))
	if err := q.rdb.HSet(ctx, q.keys.job(bad), "iv", "7m").Err(); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)

	for _, id := range []string{unknown, few} {
		st := waitState(t, q, id, JobFailed)
		if st.Attempts != 1 || !strings.Contains(st.Error, "insufficient data") {
			t.Errorf("job %s: %+v, want failed once with insufficient data", id, st)
		}
	}
	waitState(t, q, enough, JobDone)
	for _, id := range []string{missing, bad} {
		if st := waitState(t, q, id, JobDead); st.Attempts != 1 {
			t.Errorf("job %s died after %d attempts, want 1", id, st.Attempts)
		}
	}
	dead, err := q.Dead(ctx, 10)
	if err != nil || len(dead) != 2 {
		t.Fatalf("Dead = %+v, %v", dead, err)
	}
	for _, d := range dead {
		if !strings.Contains(d.Error, "unknown analyzer") && !strings.Contains(d.Error, "malformed job") {
			t.Errorf("dead job %s: error %q", d.ID, d.Error)
		}
	}
	if r, err := q.LatestResultOf(ctx, "binance", "FEW-USDT", market.Interval1m, "quick"); err != nil || len(r.Values) != 1 {
		t.Errorf("quick result = %+v, %v", r, err)
	}
	if _, err := q.LatestResult(ctx, "binance", "NOPE-USDT", market.Interval1m); !errors.Is(err, ErrNoResult) {
		t.Errorf("LatestResult of an unknown market: err = %v, want ErrNoResult", err)
	}
}

func TestWorkerRetriesWithBackoff(t *testing.T) {
	clock := newFakeClock()
	q, _ := newTestQueue(t, nil, QueueConfig{Now: clock.Now, BackoffBase: time.Minute, MaxDeliveries: 3})
	var calls atomic.Int32
	w := NewWorker(q, nil, nil, WorkerConfig{PollInterval: 10 * time.Millisecond,
		Handler: func(ctx context.Context, job Job) error {
			if calls.Add(1) <= 2 {
				return errors.New("exchange hiccup")
			}
			return nil
		}}, nil, nil)
	startWorker(t, w)
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	for i, wait := range []time.Duration{time.Minute, 2 * time.Minute} {
		var st JobStatus
		testenv.WaitFor(t, "the retry to be scheduled", func() bool {
			st = mustStatus(t, q, id)
			return st.Attempts == i+1 && st.State == JobQueued && !st.RetryAt.IsZero()
		})
		if !st.RetryAt.Equal(clock.Now().Add(wait)) || st.Error != "exchange hiccup" {
			t.Fatalf("retry %d: %+v, want due in %v", i+1, st, wait)
		}
		time.Sleep(50 * time.Millisecond) // several polls: still not due
		if n := calls.Load(); n != int32(i+1) {
			t.Fatalf("handler ran %d times before the retry was due", n)
		}
		clock.Add(wait)
	}
	if st := waitState(t, q, id, JobDone); st.Attempts != 3 {
		t.Fatalf("done after %d attempts, want 3", st.Attempts)
	}
}

func TestWorkerGracefulShutdown(t *testing.T) {
	t.Run("finishes in-flight jobs", func(t *testing.T) {
		q, _ := newTestQueue(t, nil, QueueConfig{})
		started := make(chan struct{}, 4)
		release := make(chan struct{})
		w := NewWorker(q, nil, nil, WorkerConfig{Concurrency: 2, PollInterval: 10 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
			Handler: func(ctx context.Context, job Job) error {
				started <- struct{}{}
				<-release
				return nil
			}}, nil, nil)
		a, b := mustEnqueue(t, q, spec("A-USD")), mustEnqueue(t, q, spec("B-USD"))
		stop := startWorker(t, w)
		<-started
		<-started
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		time.Sleep(50 * time.Millisecond)
		c := mustEnqueue(t, q, spec("C-USD")) // arrives during shutdown: must not be taken
		close(release)
		<-stopped
		for _, id := range []string{a, b} {
			if st := mustStatus(t, q, id); st.State != JobDone {
				t.Errorf("in-flight job %s: %s, want done", id, st.State)
			}
		}
		if st := mustStatus(t, q, c); st.State != JobQueued || st.Attempts != 0 {
			t.Errorf("job enqueued during shutdown: %+v, want untouched", st)
		}
	})
	t.Run("hands back jobs still running after the grace period", func(t *testing.T) {
		q, _ := newTestQueue(t, nil, QueueConfig{})
		started := make(chan struct{}, 1)
		w := NewWorker(q, nil, nil, WorkerConfig{PollInterval: 10 * time.Millisecond, ShutdownTimeout: 50 * time.Millisecond,
			Handler: func(ctx context.Context, job Job) error {
				started <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			}}, nil, nil)
		id := mustEnqueue(t, q, spec("A-USD"))
		stop := startWorker(t, w)
		<-started
		stop()
		st := mustStatus(t, q, id)
		if st.State != JobQueued || st.Attempts != 0 {
			t.Fatalf("handed-back job: %+v, want queued with the delivery not counted", st)
		}
		// Another worker takes it at once (no lease to wait for).
		w2 := NewWorker(q, nil, nil, WorkerConfig{PollInterval: 10 * time.Millisecond,
			Handler: func(ctx context.Context, job Job) error { return nil }}, nil, nil)
		startWorker(t, w2)
		waitState(t, q, id, JobDone)
	})
}

// TestLongJobNotTakenOverFromLiveWorker runs a job three leases long beside a second,
// idle worker: the first worker's heartbeat must keep its lease, so the job runs once
// and completes at its first delivery.
func TestLongJobNotTakenOverFromLiveWorker(t *testing.T) {
	const lease = time.Second
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: lease})
	var mu sync.Mutex
	runs := map[string]int{}
	handler := func(ctx context.Context, job Job) error {
		mu.Lock()
		runs[job.ID]++
		mu.Unlock()
		select {
		case <-time.After(3 * lease):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, name := range []string{"first", "second"} {
		startWorker(t, NewWorker(q, nil, nil, WorkerConfig{Consumer: name, Concurrency: 1, Prefetch: -1,
			PollInterval: 50 * time.Millisecond, Handler: handler}, nil, nil))
	}
	id := mustEnqueue(t, q, spec("LONG-USD"))
	st := waitState(t, q, id, JobDone)
	if st.Attempts != 1 {
		t.Errorf("job done after %d deliveries, want 1: it was taken over from a live worker", st.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs[id] != 1 {
		t.Errorf("handler ran %d times for the job, want 1", runs[id])
	}
}

func TestWorkerRefusesHeartbeatNotShorterThanLease(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: time.Second})
	w := NewWorker(q, nil, nil, WorkerConfig{Heartbeat: time.Second, Handler: func(context.Context, Job) error { return nil }}, nil, nil)
	err := w.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "heartbeat 1s is not shorter than the lease 1s") {
		t.Fatalf("Run = %v, want an error naming the heartbeat and the lease", err)
	}
}
