package signals

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// flakyPublisher fails its first n publishes, then passes them on.
type flakyPublisher struct {
	next  Publisher
	fails atomic.Int32
}

func (p *flakyPublisher) Publish(ctx context.Context, sigs ...market.Signal) error {
	if p.fails.Add(-1) >= 0 {
		return errors.New("injected publish failure")
	}
	return p.next.Publish(ctx, sigs...)
}

// roleFixture is a signal stream with a distributor and a subscriber, an analysis update
// stream with a publisher, and the macd strategy.
type roleFixture struct {
	rdb        redisClient
	prefix     string
	sc         StreamConfig
	as         pipeline.AnalysisStream
	dist       *Distributor
	pub        *pipeline.AnalysisPublisher
	signals    <-chan market.Signal
	strategies []Strategy
}

type redisClient = stateStore

func newRoleFixture(t *testing.T, ctx context.Context) *roleFixture {
	t.Helper()
	rdb := redistest.Client(t)
	f := &roleFixture{rdb: rdb, prefix: redistest.Prefix(t, rdb)}
	nc := connect(t, testenv.NATSURL())
	f.sc, f.as = uniqueStream(t, nc), uniqueAnalysisStream(t, nc)
	var err error
	f.dist, err = NewDistributor(ctx, nc, DistributorConfig{StreamConfig: f.sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour, RetryWait: 10 * time.Millisecond}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if f.pub, err = pipeline.NewAnalysisPublisher(ctx, nc, f.as); err != nil {
		t.Fatal(err)
	}
	c, _ := NewClient(connect(t, testenv.NATSURL()), ClientConfig{StreamConfig: f.sc}, nil)
	f.signals, _ = collect(t, ctx, c, SubscribeOptions{From: FromAll})
	f.strategies, _ = ParseStrategies("s.yaml", []byte("strategies:\n  - name: macd\n    intervals: [1m]\n    rules: [{type: macd}]\n"))
	return f
}

// publishCrosses publishes updates i = from..to-1 whose MACD crosses its signal line at
// every odd i (up) and every even i > 0 (down): one signal per update after the first.
func (f *roleFixture) publishCrosses(t *testing.T, ctx context.Context, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		m := -1.0
		if i%2 == 1 {
			m = 1
		}
		u := macdUpdate(i, m, 0)
		if _, err := f.pub.PublishUpdate(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
}

// run starts a role of its own (its own connection, same durable) and returns its stop.
func (f *roleFixture) run(t *testing.T, ctx context.Context, pub Publisher, reg prometheus.Registerer) func() {
	t.Helper()
	role, err := NewRole(ctx, connect(t, testenv.NATSURL()), f.rdb, pub, nil,
		RoleConfig{Strategies: f.strategies, Prefix: f.prefix, Stream: f.as, AckWait: time.Second}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- role.Run(rctx) }()
	return func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

// expectSignals takes n signals and checks that they are distinct and that no more come.
func expectSignals(t *testing.T, ch <-chan market.Signal, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, s := range receive(t, ch, n, 20*time.Second) {
		seen[s.ID]++
	}
	quiet(t, ch, 500*time.Millisecond)
	for id, k := range seen {
		if k != 1 {
			t.Errorf("signal %s received %d times", id, k)
		}
	}
}

// TestRoleProcessesUpdatesPublishedWhileDown stops the role, publishes updates, starts a
// new role on the same durable consumer and receives every signal they raise, once.
func TestRoleProcessesUpdatesPublishedWhileDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newRoleFixture(t, ctx)
	reg1 := prometheus.NewRegistry()
	stop := f.run(t, ctx, f.dist, reg1)
	f.publishCrosses(t, ctx, 0, 4)
	expectSignals(t, f.signals, 3)
	waitFor(t, "no update pending", func() bool { return gauge(t, reg1, "tickstash_signals_updates_pending") == 0 })
	stop()

	f.publishCrosses(t, ctx, 4, 10) // nobody is reading
	// The consumer's pending count may trail the publishes' acks by a moment.
	waitFor(t, "6 updates pending while no role runs", func() bool {
		return gauge(t, reg1, "tickstash_signals_updates_pending") == 6
	})
	reg := prometheus.NewRegistry()
	stop = f.run(t, ctx, f.dist, reg)
	defer stop()
	expectSignals(t, f.signals, 6)
	if v := counter(t, reg, "tickstash_signals_updates_total"); v != 6 {
		t.Errorf("the restarted role handled %v updates, want the 6 published while it was down", v)
	}
}

// gauge returns the value of the gauge name in reg, failing tb if it is not there.
func gauge(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	tb.Fatalf("no gauge %s", name)
	return 0
}

// TestRoleRetriesFailedUpdate makes the signal publish fail twice: the update is retried
// until it goes through, before the newer updates (which would make it old news), and
// every signal is published once.
func TestRoleRetriesFailedUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newRoleFixture(t, ctx)
	flaky := &flakyPublisher{next: f.dist}
	flaky.fails.Store(2)
	reg := prometheus.NewRegistry()
	stop := f.run(t, ctx, flaky, reg)
	defer stop()
	f.publishCrosses(t, ctx, 0, 3)
	expectSignals(t, f.signals, 2)
	if v := counter(t, reg, "tickstash_signals_update_retries_total"); v != 2 {
		t.Errorf("retries = %v, want 2", v)
	}
}

// TestRoleDuplicateUpdatesRaiseOneSignal republishes every update under a new job id
// (the same MsgID: dropped by the stream) and publishes one update twice on the stream
// directly with another id (not dropped): still one signal per cross.
func TestRoleDuplicateUpdatesRaiseOneSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newRoleFixture(t, ctx)
	stop := f.run(t, ctx, f.dist, prometheus.NewRegistry())
	defer stop()
	f.publishCrosses(t, ctx, 0, 3)
	u := macdUpdate(1, 1, 0)
	u.JobID = "another"
	dup, err := f.pub.PublishUpdate(ctx, &u)
	if err != nil || !dup {
		t.Errorf("republished update: duplicate %v, err %v; want a duplicate", dup, err)
	}
	expectSignals(t, f.signals, 2)
}

// TestNewRoleChecksColumns refuses a strategy whose rule reads a column the analyzer
// does not compute, naming the strategy, rule, file line, column and the fix.
func TestNewRoleChecksColumns(t *testing.T) {
	strategies, err := ParseStrategies("my.yaml", []byte("strategies:\n  - name: ok\n    intervals: [1m]\n    rules: [{type: rsi}]\n"+
		"  - name: wide\n    intervals: [1m]\n    rules:\n      - type: rsi\n      - type: bbands\n        dev: 2.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"rsi_14", "bbands_upper_20_2", "bbands_middle_20_2", "bbands_lower_20_2"}
	_, err = NewRole(context.Background(), nil, nil, nil, nil, RoleConfig{Strategies: strategies, Columns: cols}, nil, nil)
	if !errors.Is(err, ErrStrategyFile) {
		t.Fatalf("NewRole = %v, want a strategy file error", err)
	}
	for _, want := range []string{"my.yaml:9:", `strategy "wide"`, "close x bbands_20_2.5", "bbands_upper_20_2.5 and bbands_lower_20_2.5", "bbands:20,2.5", "--indicators"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"ok"`) {
		t.Errorf("error %q blames the strategy whose columns are computed", err)
	}
	if err := CheckColumns(strategies, append(cols, "bbands_upper_20_2.5", "bbands_lower_20_2.5")); err != nil {
		t.Errorf("CheckColumns with every column = %v", err)
	}
	if _, err := NewRole(context.Background(), nil, nil, nil, nil, RoleConfig{Strategies: strategies}, nil, nil); err != nil {
		t.Errorf("NewRole without Columns (no check) = %v", err)
	}
}

// TestPutRefusesEntitlementGrantingNothing: no strategies or no symbols would allow
// nothing; Put refuses it and stores nothing.
func TestPutRefusesEntitlementGrantingNothing(t *testing.T) {
	rdb := redistest.Client(t)
	store := NewEntitlementStore(rdb, EntitlementConfig{Prefix: redistest.Prefix(t, rdb)})
	ctx := context.Background()
	for _, e := range []Entitlement{
		{User: "bob", Strategies: []string{"rsi"}},
		{User: "bob", Symbols: []string{Any}},
	} {
		if err := store.Put(ctx, e); !errors.Is(err, ErrGrantsNothing) {
			t.Errorf("Put(%+v) = %v, want ErrGrantsNothing", e, err)
		}
	}
	if ents, err := store.List(ctx); err != nil || len(ents) != 0 {
		t.Errorf("List = %v, %v; want nothing stored", ents, err)
	}
}

// TestRoleRecreatesDeletedConsumer deletes the durable consumer under a running role:
// the role makes it again and goes on turning updates into signals.
func TestRoleRecreatesDeletedConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := newRoleFixture(t, ctx)
	stop := f.run(t, ctx, f.dist, prometheus.NewRegistry())
	defer stop()
	f.publishCrosses(t, ctx, 0, 2)
	expectSignals(t, f.signals, 1)
	js, _ := jetstream.New(connect(t, testenv.NATSURL()))
	if err := js.DeleteConsumer(ctx, f.as.Name, "tickstash-signals"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer made again", func() bool {
		_, err := js.Consumer(ctx, f.as.Name, "tickstash-signals")
		return err == nil
	})
	f.publishCrosses(t, ctx, 2, 4)
	expectSignals(t, f.signals, 2)
}
