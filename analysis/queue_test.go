package analysis

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestQueue returns a queue under a prefix of the test's own on rdb (the test Redis
// when nil), with its own registry.
func newTestQueue(tb testing.TB, rdb redis.UniversalClient, cfg QueueConfig) (*Queue, *prometheus.Registry) {
	tb.Helper()
	if rdb == nil {
		rdb = redistest.Client(tb)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(tb, rdb)
	}
	reg := prometheus.NewRegistry()
	return NewQueue(rdb, cfg, reg), reg
}

func spec(sym string) JobSpec {
	return JobSpec{Exchange: "binance", Symbol: market.Symbol(sym), Interval: market.Interval1m}
}

func mustEnqueue(tb testing.TB, q *Queue, s JobSpec) string {
	tb.Helper()
	id, err := q.Enqueue(context.Background(), s)
	if err != nil {
		tb.Fatalf("Enqueue(%+v): %v", s, err)
	}
	return id
}

func mustStatus(tb testing.TB, q *Queue, id string) JobStatus {
	tb.Helper()
	st, err := q.Status(context.Background(), id)
	if err != nil {
		tb.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

func mustRead(tb testing.TB, q *Queue, consumer string, n int) []delivery {
	tb.Helper()
	ctx := context.Background()
	if err := q.ensureGroup(ctx); err != nil {
		tb.Fatal(err)
	}
	ds, err := q.read(ctx, consumer, n, 10*time.Millisecond)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return ds
}

func mustComplete(tb testing.TB, q *Queue, ss ...settlement) []bool {
	tb.Helper()
	applied, err := q.complete(context.Background(), ss)
	if err != nil {
		tb.Fatalf("complete: %v", err)
	}
	return applied
}

// mustDone settles d as done and fails the test if its lease was lost (the settlement
// stale).
func mustDone(tb testing.TB, q *Queue, d *delivery) {
	tb.Helper()
	if applied := mustComplete(tb, q, settlement{d: d, out: outDone}); !applied[0] {
		tb.Fatalf("settling job %s (%s): stale, want settled", d.id, d.spec.Symbol)
	}
}

func TestEnqueueCoalesces(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a := spec("BTC-USDT")

	a.Watermark = t0
	id := mustEnqueue(t, q, a)
	a.Watermark = t0.Add(2 * time.Minute)
	if got := mustEnqueue(t, q, a); got != id {
		t.Fatalf("second request for a waiting target made job %s, want coalesced into %s", got, id)
	}
	a.Watermark = t0.Add(time.Minute) // older: must not lower the watermark
	mustEnqueue(t, q, a)
	st := mustStatus(t, q, id)
	if st.State != JobQueued || !st.Spec.Watermark.Equal(t0.Add(2*time.Minute)) || st.Spec.Analyzer != "default" {
		t.Fatalf("status after coalescing = %+v, want queued with watermark %v and analyzer default", st, t0.Add(2*time.Minute))
	}
	if other := mustEnqueue(t, q, spec("ETH-USDT")); other == id {
		t.Fatal("another target was coalesced into the same job")
	}

	ds := mustRead(t, q, "c1", 10)
	if len(ds) != 2 {
		t.Fatalf("read %d deliveries, want 2 (one per target)", len(ds))
	}
	var d delivery
	for _, x := range ds {
		if x.id == id {
			d = x
		}
	}
	// A request while the job runs: run once more afterwards, with the newest watermark.
	a.Watermark = t0.Add(3 * time.Minute)
	if got := mustEnqueue(t, q, a); got != id {
		t.Fatalf("request for a running target made job %s, want %s", got, id)
	}
	a.Watermark = t0.Add(4 * time.Minute)
	mustEnqueue(t, q, a)
	if st := mustStatus(t, q, id); st.State != JobRunning || !st.RerunPending {
		t.Fatalf("status = %+v, want running with a rerun pending", st)
	}
	mustComplete(t, q, settlement{d: &d, out: outDone})
	st = mustStatus(t, q, id)
	if st.State != JobQueued || st.RerunPending || st.Attempts != 0 || !st.Spec.Watermark.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("status after the run = %+v, want queued again (rerun) with watermark %v", st, t0.Add(4*time.Minute))
	}
	ds = mustRead(t, q, "c1", 10)
	if len(ds) != 1 || ds[0].id != id || !ds[0].spec.Watermark.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("rerun deliveries = %+v, want job %s once", ds, id)
	}
	mustComplete(t, q, settlement{d: &ds[0], out: outDone})
	if st := mustStatus(t, q, id); st.State != JobDone {
		t.Fatalf("state = %s, want done", st.State)
	}
	// Finished: the next request is a new job.
	if got := mustEnqueue(t, q, a); got == id {
		t.Fatal("request after the job finished was coalesced into the finished job")
	}
	if got := testutil.ToFloat64(q.m.coalesced); got != 4 {
		t.Errorf("coalesced counter = %v, want 4", got)
	}
	if got := testutil.ToFloat64(q.m.enqueued); got != 3 {
		t.Errorf("enqueued counter = %v, want 3", got)
	}
}

func TestEnqueueBackpressure(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{MaxLen: 3})
	for _, s := range []string{"A-USD", "B-USD", "C-USD"} {
		mustEnqueue(t, q, spec(s))
	}
	// Coalescing still works at the bound: it adds nothing.
	mustEnqueue(t, q, spec("A-USD"))
	_, err := q.Enqueue(context.Background(), spec("D-USD"))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Enqueue beyond the bound: err = %v, want ErrQueueFull", err)
	}
	if !strings.Contains(err.Error(), "bound 3") {
		t.Errorf("error %q does not state the bound", err)
	}
	if got := testutil.ToFloat64(q.m.rejected); got != 1 {
		t.Errorf("rejected counter = %v, want 1", got)
	}
}

func TestEnqueueRejectsInvalidSpec(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	for name, s := range map[string]JobSpec{
		"exchange": {Exchange: "Bad Name", Symbol: "BTC-USD", Interval: market.Interval1m},
		"symbol":   {Exchange: "binance", Symbol: "btcusd", Interval: market.Interval1m},
		"interval": {Exchange: "binance", Symbol: "BTC-USD", Interval: market.Interval(7 * time.Minute)},
		"analyzer": {Exchange: "binance", Symbol: "BTC-USD", Interval: market.Interval1m, Analyzer: "a:b"},
	} {
		if _, err := q.Enqueue(context.Background(), s); !errors.Is(err, ErrInvalidJob) {
			t.Errorf("%s: err = %v, want ErrInvalidJob", name, err)
		}
	}
	if _, err := q.Status(context.Background(), "nope"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("Status of an unknown job: err = %v, want ErrJobNotFound", err)
	}
}

func TestRetryBackoffAndDeadLetter(t *testing.T) {
	clock := newFakeClock()
	q, _ := newTestQueue(t, nil, QueueConfig{Now: clock.Now, MaxDeliveries: 3, BackoffBase: time.Second})
	ctx := context.Background()
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	for attempt := 1; attempt <= 2; attempt++ {
		ds := mustRead(t, q, "c1", 1)
		if len(ds) != 1 || ds[0].attempt != attempt {
			t.Fatalf("attempt %d: deliveries %+v", attempt, ds)
		}
		mustComplete(t, q, settlement{d: &ds[0], out: outRetry, err: "boom"})
		st := mustStatus(t, q, id)
		wantDue := clock.Now().Add(time.Duration(1<<(attempt-1)) * time.Second)
		if st.State != JobQueued || st.Error != "boom" || !st.RetryAt.Equal(wantDue) {
			t.Fatalf("attempt %d: status %+v, want queued, error boom, retry at %v", attempt, st, wantDue)
		}
		// Not due yet: nothing moves, nothing is delivered.
		clock.Add(time.Duration(1<<(attempt-1))*time.Second - time.Millisecond)
		if n, err := q.promote(ctx, 10); err != nil || n != 0 {
			t.Fatalf("promote before due = %d, %v; want 0", n, err)
		}
		if ds := mustRead(t, q, "c1", 1); len(ds) != 0 {
			t.Fatalf("delivered before due: %+v", ds)
		}
		// A request meanwhile coalesces into the waiting retry.
		if got := mustEnqueue(t, q, spec("BTC-USDT")); got != id {
			t.Fatalf("request during backoff made job %s, want %s", got, id)
		}
		clock.Add(time.Millisecond)
		if n, err := q.promote(ctx, 10); err != nil || n != 1 {
			t.Fatalf("promote when due = %d, %v; want 1", n, err)
		}
	}
	if got := testutil.ToFloat64(q.m.retries); got != 2 {
		t.Errorf("retries counter = %v, want 2", got)
	}
	ds := mustRead(t, q, "c1", 1)
	mustComplete(t, q, settlement{d: &ds[0], out: outDead, err: "gave up: boom"})
	st := mustStatus(t, q, id)
	if st.State != JobDead || st.Attempts != 3 {
		t.Fatalf("status %+v, want dead after 3 attempts", st)
	}
	dead, err := q.Dead(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != id || dead[0].Error != "gave up: boom" ||
		dead[0].Spec.Symbol != "BTC-USDT" || dead[0].Attempts != 3 || !dead[0].At.Equal(clock.Now()) {
		t.Fatalf("Dead = %+v, %v", dead, err)
	}
	// A dead job does not swallow new requests.
	if got := mustEnqueue(t, q, spec("BTC-USDT")); got == id {
		t.Fatal("request for a dead job's target coalesced into it")
	}
	if err := q.Retry(ctx, id); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if st := mustStatus(t, q, id); st.State != JobQueued || st.Attempts != 0 {
		t.Fatalf("after Retry: %+v", st)
	}
	if dead, _ := q.Dead(ctx, 10); len(dead) != 0 {
		t.Fatalf("dead-letter stream after Retry: %+v", dead)
	}
	if err := q.Retry(ctx, id); !errors.Is(err, ErrJobNotDead) {
		t.Fatalf("Retry of a queued job: err = %v, want ErrJobNotDead", err)
	}
	if err := q.Retry(ctx, "0123456789abcdef"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("Retry of an unknown job: err = %v, want ErrJobNotFound", err)
	}
}

func TestDeliveryCapDeadLetters(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{MaxDeliveries: 2, Lease: 30 * time.Millisecond})
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	ctx := context.Background()
	mustRead(t, q, "dies-1", 1) // the worker dies: never settles
	for i, want := range []int{1, 0} {
		time.Sleep(40 * time.Millisecond)
		ds, err := q.reclaim(ctx, "survivor", 10)
		if err != nil || len(ds) != want {
			t.Fatalf("reclaim %d: %d deliveries, %v; want %d", i, len(ds), err, want)
		}
	}
	st := mustStatus(t, q, id)
	if st.State != JobDead || !strings.Contains(st.Error, "delivered 2 times") {
		t.Fatalf("status %+v, want dead for the delivery cap", st)
	}
	if got := testutil.ToFloat64(q.m.reclaimed); got != 2 {
		t.Errorf("reclaimed counter = %v, want 2", got)
	}
}

func TestMalformedEntryDeadLettered(t *testing.T) {
	// Both read paths: XREADGROUP from Go, and the read inside the complete script.
	reads := map[string]func(q *Queue) ([]delivery, error){
		"read": func(q *Queue) ([]delivery, error) {
			return q.read(context.Background(), "c1", 10, time.Millisecond)
		},
		"completeAndRead": func(q *Queue) ([]delivery, error) {
			_, ds, err := q.completeAndRead(context.Background(), "c1", nil, 10)
			return ds, err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			q, _ := newTestQueue(t, nil, QueueConfig{})
			ctx := context.Background()
			if err := q.ensureGroup(ctx); err != nil {
				t.Fatal(err)
			}
			for _, v := range [][]string{{"payload", "{not json", "a", "1"}, {"j", "x:y"}} {
				if err := q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.keys.stream(), Values: v}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if ds, err := read(q); err != nil || len(ds) != 0 {
				t.Fatalf("read = %+v, %v; want malformed entries not delivered", ds, err)
			}
			dead, err := q.Dead(ctx, 10)
			if err != nil || len(dead) != 2 {
				t.Fatalf("Dead = %+v, %v", dead, err)
			}
			for i, raw := range []string{"j=x:y", "a=1 payload={not json"} {
				if dead[i].ID != "" || !strings.Contains(dead[i].Error, "malformed") || dead[i].Raw != raw {
					t.Errorf("dead[%d] = %+v, want raw %q", i, dead[i], raw)
				}
			}
			if got := testutil.ToFloat64(q.m.dead); got != 2 {
				t.Errorf("dead counter = %v, want 2", got)
			}
			if n, _ := q.rdb.XLen(ctx, q.keys.stream()).Result(); n != 0 {
				t.Errorf("stream still holds %d entries", n)
			}
		})
	}
}

// TestCompleteAndRead settles a batch and takes the next jobs in the same call: the
// settled jobs are acknowledged and done, the new ones running under fresh, increasing
// tokens, and a missing consumer group reads nothing without failing the settlements.
func TestCompleteAndRead(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	ctx := context.Background()
	syms := []string{"A-USD", "B-USD", "C-USD", "D-USD", "E-USD"}
	var ids []string
	for _, sym := range syms {
		ids = append(ids, mustEnqueue(t, q, spec(sym)))
	}
	first := mustRead(t, q, "c1", 2)
	if len(first) != 2 {
		t.Fatalf("read %d deliveries, want 2", len(first))
	}
	ss := []settlement{{d: &first[0], out: outDone}, {d: &first[1], out: outFailed, err: "analysis: insufficient data"}}
	applied, next, err := q.completeAndRead(ctx, "c1", ss, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || !applied[0] || !applied[1] {
		t.Fatalf("applied = %v, want both", applied)
	}
	if len(next) != 3 {
		t.Fatalf("read %d deliveries, want 3", len(next))
	}
	last := toInt(first[1].token)
	for i, d := range next {
		want := spec(syms[2+i])
		want.Analyzer = q.cfg.DefaultAnalyzer
		if d.id != ids[2+i] || d.spec != want || d.attempt != 1 {
			t.Errorf("delivery %d = %+v, want job %s of %s, attempt 1", i, d, ids[2+i], syms[2+i])
		}
		if tok := toInt(d.token); tok <= last {
			t.Errorf("delivery %d token %d, want above %d", i, tok, last)
		} else {
			last = tok
		}
		if st := mustStatus(t, q, d.id); st.State != JobRunning {
			t.Errorf("job %s state %s, want running", d.id, st.State)
		}
	}
	if st := mustStatus(t, q, ids[0]); st.State != JobDone {
		t.Errorf("job %s state %s, want done", ids[0], st.State)
	}
	if st := mustStatus(t, q, ids[1]); st.State != JobFailed || st.Error != "analysis: insufficient data" {
		t.Errorf("job %s = %+v, want failed with the error", ids[1], st)
	}
	if n, _ := q.rdb.XLen(ctx, q.keys.stream()).Result(); n != 3 {
		t.Errorf("stream holds %d entries, want the 3 running", n)
	}
	// Settling the same deliveries again is stale.
	if applied, _, err := q.completeAndRead(ctx, "c1", ss, 0); err != nil || applied[0] || applied[1] {
		t.Errorf("second settlement applied = %v, %v; want stale", applied, err)
	}

	if err := q.rdb.XGroupDestroy(ctx, q.keys.stream(), q.cfg.Group).Err(); err != nil {
		t.Fatal(err)
	}
	applied, ds, err := q.completeAndRead(ctx, "c1", []settlement{{d: &next[0], out: outDone}}, 10)
	if err != nil || len(applied) != 1 || !applied[0] || len(ds) != 0 {
		t.Fatalf("without a group: applied %v, read %+v, %v; want settled, none read", applied, ds, err)
	}
}

func TestTrimmedPendingEntryCounted(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: 20 * time.Millisecond})
	ctx := context.Background()
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	mustRead(t, q, "dies", 1)
	if err := q.rdb.XTrimMaxLen(ctx, q.keys.stream(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if ds, err := q.reclaim(ctx, "survivor", 10); err != nil || len(ds) != 0 {
		t.Fatalf("reclaim = %+v, %v", ds, err)
	}
	if got := testutil.ToFloat64(q.m.trimmed); got != 1 {
		t.Fatalf("trimmed counter = %v, want 1", got)
	}
	// The lost job must not swallow later requests.
	if got := mustEnqueue(t, q, spec("BTC-USDT")); got == id {
		t.Fatal("request coalesced into a job whose entry was trimmed away")
	}
}

func TestFencedResultWrites(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: 30 * time.Millisecond})
	ctx := context.Background()
	mustEnqueue(t, q, spec("BTC-USDT"))
	old := mustRead(t, q, "slow", 1)[0]
	time.Sleep(40 * time.Millisecond) // the slow worker's lease expires
	ds, err := q.reclaim(ctx, "fresh", 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("reclaim: %+v, %v", ds, err)
	}
	fresh := ds[0]
	if fresh.token <= old.token && len(fresh.token) <= len(old.token) {
		t.Fatalf("tokens not increasing: old %s, fresh %s", old.token, fresh.token)
	}
	r := &Result{Exchange: "binance", Symbol: "BTC-USDT", Interval: market.Interval1m, Analyzer: "default"}
	r.Values = map[string]float64{"x": 2}
	if err := q.storeResult(ctx, &fresh, r, []byte(`{}`)); err != nil {
		t.Fatalf("fresh worker's write: %v", err)
	}
	r.Values = map[string]float64{"x": 1}
	if err := q.storeResult(ctx, &old, r, []byte(`{}`)); !errors.Is(err, errLeaseLost) {
		t.Fatalf("stale worker's write: err = %v, want errLeaseLost", err)
	}
	got, err := q.LatestResult(ctx, "binance", "BTC-USDT", market.Interval1m)
	if err != nil || got.Values["x"] != 2 {
		t.Fatalf("LatestResult = %+v, %v; want the fresh worker's", got, err)
	}
	if lost, err := q.extend(ctx, "slow", []*delivery{&old, &fresh}); err != nil || !lost[0] || lost[1] {
		t.Fatalf("extend = %v, %v; want the stale lease lost", lost, err)
	}
	if applied := mustComplete(t, q, settlement{d: &old, out: outDone}); applied[0] {
		t.Fatal("the stale worker settled the job")
	}
	mustDone(t, q, &fresh)
	// A write under an older token than the stored result's is refused even when the
	// job record agrees (a delayed write of an earlier run).
	mustEnqueue(t, q, spec("BTC-USDT"))
	next := mustRead(t, q, "c", 1)[0]
	if err := q.storeResult(ctx, &next, r, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.rdb.HSet(ctx, q.keys.job(next.id), "tok", fresh.token).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.storeResult(ctx, &fresh, r, nil); !errors.Is(err, errLeaseLost) {
		t.Fatalf("write under an older token: err = %v, want errLeaseLost", err)
	}
}

func TestQueueCollector(t *testing.T) {
	q, reg := newTestQueue(t, nil, QueueConfig{})
	for _, s := range []string{"A-USD", "B-USD", "C-USD"} {
		mustEnqueue(t, q, spec(s))
	}
	mustRead(t, q, "c1", 1)
	want := `
# HELP tickstash_analysis_queue_consumer_lag Stream entries not yet delivered to the consumer group (XINFO GROUPS lag).
# TYPE tickstash_analysis_queue_consumer_lag gauge
tickstash_analysis_queue_consumer_lag 2
# HELP tickstash_analysis_queue_length Jobs in the queue stream: waiting plus running (read from Redis at scrape time).
# TYPE tickstash_analysis_queue_length gauge
tickstash_analysis_queue_length 3
# HELP tickstash_analysis_queue_pending Entries delivered to workers and not yet acknowledged.
# TYPE tickstash_analysis_queue_pending gauge
tickstash_analysis_queue_pending 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tickstash_analysis_queue_length", "tickstash_analysis_queue_consumer_lag", "tickstash_analysis_queue_pending"); err != nil {
		t.Fatal(err)
	}
}

// TestStatusOfNewJob checks what Status reports for a job the enqueue script wrote
// without the fields whose defaults the reader fills in.
func TestStatusOfNewJob(t *testing.T) {
	clock := newFakeClock()
	q, _ := newTestQueue(t, nil, QueueConfig{Now: clock.Now})
	id := mustEnqueue(t, q, spec("BTC-USDT"))
	st := mustStatus(t, q, id)
	want := clock.Now()
	if st.State != JobQueued || st.Attempts != 0 || !st.EnqueuedAt.Equal(want) || !st.UpdatedAt.Equal(want) {
		t.Fatalf("Status = %+v, want queued, 0 attempts, enqueued and updated at %v", st, want)
	}
}

// A job finished soon after its enqueue keeps the TTL the enqueue set (no EXPIRE on the
// hot path); one whose TTL may have run down gets a fresh one, and so does a record from
// an earlier version, whose exp field (enq + job TTL, now derived) is ignored.
func TestSettleRefreshesOnlyARunDownTTL(t *testing.T) {
	clock := newFakeClock()
	q, _ := newTestQueue(t, nil, QueueConfig{Now: clock.Now, JobTTL: time.Hour})
	ctx := context.Background()
	old := mustEnqueue(t, q, spec("OLD-USD"))
	clock.Add(10 * time.Minute) // OLD's TTL has 50 of its 60 minutes left
	fresh := mustEnqueue(t, q, spec("NEW-USD"))
	legacy := mustEnqueue(t, q, spec("LEG-USD"))
	// As an earlier version wrote it, enqueued ten minutes ago.
	if err := q.rdb.HSet(ctx, q.keys.job(legacy), "enq", clock.Now().Add(-10*time.Minute).UnixMilli(),
		"exp", clock.Now().Add(50*time.Minute).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	ds := mustRead(t, q, "c1", 3)
	if len(ds) != 3 {
		t.Fatalf("read %d deliveries, want 3", len(ds))
	}
	// Stand in for the time that passed: Redis's TTLs shrink, the records' times stay.
	for _, id := range []string{old, fresh, legacy} {
		if err := q.rdb.Expire(ctx, q.keys.job(id), 100*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var ss []settlement
	for i := range ds {
		ss = append(ss, settlement{d: &ds[i], out: outDone})
	}
	if applied, _, err := q.completeAndRead(ctx, "c1", ss, 0); err != nil || len(applied) != 3 || !applied[0] || !applied[1] || !applied[2] {
		t.Fatalf("settle: applied %v, %v; want all three", applied, err)
	}
	for id, refreshed := range map[string]bool{old: true, fresh: false, legacy: true} {
		ttl, err := q.rdb.TTL(ctx, q.keys.job(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := ttl > 100*time.Second; got != refreshed {
			t.Errorf("job %s: TTL %v after settling, want refreshed to an hour: %v", id, ttl, refreshed)
		}
		if st := mustStatus(t, q, id); st.State != JobDone {
			t.Errorf("job %s state %s, want done", id, st.State)
		}
	}
}

// Settling removes exactly the entries acknowledged, whatever their order: those older
// than the oldest pending entry go by a trim of the stream's head, the others one by one,
// and entries still waiting or pending stay.
func TestSettleRemovesOnlyAcknowledgedEntries(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{})
	ctx := context.Background()
	ids := map[string]string{}
	for _, sym := range []string{"A-USD", "B-USD", "C-USD", "D-USD", "E-USD"} {
		ids[mustEnqueue(t, q, spec(sym))] = sym
	}
	left := func(want ...string) {
		t.Helper()
		msgs, err := q.rdb.XRange(ctx, q.keys.stream(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			id, _ := m.Values["j"].(string)
			got = append(got, ids[id])
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("entries left in the stream (-want +got):\n%s", diff)
		}
	}
	abc := mustRead(t, q, "c1", 3)
	if len(abc) != 3 {
		t.Fatalf("read %d deliveries, want 3", len(abc))
	}
	mustDone(t, q, &abc[2]) // newer than the oldest pending (A)
	left("A-USD", "B-USD", "D-USD", "E-USD")
	mustDone(t, q, &abc[0]) // the oldest
	left("B-USD", "D-USD", "E-USD")
	d := mustRead(t, q, "c2", 1)
	if len(d) != 1 || ids[d[0].id] != "D-USD" {
		t.Fatalf("c2 read %+v, want D", d)
	}
	mustDone(t, q, &abc[1]) // the oldest, with D pending at c2 and E waiting
	left("D-USD", "E-USD")
	mustDone(t, q, &d[0]) // none pending after it
	left("E-USD")
	e := mustRead(t, q, "c1", 10)
	if len(e) != 1 || ids[e[0].id] != "E-USD" {
		t.Fatalf("c1 read %+v, want E", e)
	}
	mustDone(t, q, &e[0])
	left()
}

// A dead worker's delivery, the oldest pending entry, survives the settlements of newer
// ones by live workers (they are removed one by one, not trimmed past it) and is taken
// over after the lease; then settling it leaves the stream empty.
func TestDeadWorkersEntrySurvivesOthersSettling(t *testing.T) {
	q, _ := newTestQueue(t, nil, QueueConfig{Lease: 20 * time.Millisecond})
	ctx := context.Background()
	for _, sym := range []string{"A-USD", "B-USD", "C-USD"} {
		mustEnqueue(t, q, spec(sym))
	}
	if ds := mustRead(t, q, "dies", 1); len(ds) != 1 {
		t.Fatalf("dying worker read %d deliveries, want 1", len(ds))
	}
	live := mustRead(t, q, "lives", 10)
	if len(live) != 2 {
		t.Fatalf("live worker read %d deliveries, want 2", len(live))
	}
	for i := range live {
		mustDone(t, q, &live[i])
	}
	if n, err := q.Length(ctx); err != nil || n != 1 {
		t.Fatalf("stream holds %d entries after the live worker settled (%v), want the dead one's 1", n, err)
	}
	time.Sleep(30 * time.Millisecond)
	taken, err := q.reclaim(ctx, "survivor", 10)
	if err != nil || len(taken) != 1 || taken[0].spec.Symbol != "A-USD" {
		t.Fatalf("reclaim = %+v, %v; want A's delivery", taken, err)
	}
	if got := testutil.ToFloat64(q.m.trimmed); got != 0 {
		t.Fatalf("trimmed counter = %v, want 0: a pending entry was removed", got)
	}
	mustDone(t, q, &taken[0])
	if n, err := q.Length(ctx); err != nil || n != 0 {
		t.Fatalf("stream holds %d entries after all settled (%v), want 0", n, err)
	}
}
