package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// hangingState is a store whose writes succeed but whose reads of stored state hang
// until their context ends, as reads to an unresponsive Redis would.
type hangingState struct {
	recordingStore
	mu       sync.Mutex
	deadline []bool // per read: whether its context had a deadline
}

func (s *hangingState) Ticker(ctx context.Context, _ market.Exchange, _ market.Symbol) (cache.Ticker, error) {
	_, ok := ctx.Deadline()
	s.mu.Lock()
	s.deadline = append(s.deadline, ok)
	s.mu.Unlock()
	<-ctx.Done()
	return cache.Ticker{}, ctx.Err()
}

func (s *hangingState) LastCandles(ctx context.Context, _ market.Exchange, _ market.Symbol, _ market.Interval, _ int) ([]market.Candle, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestResumeReadsAreBounded: a market's resume reads run with ResumeTimeout under the
// ingester's context; when they time out the market starts afresh, the failure is
// counted, and the trades still get written.
func TestResumeReadsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := &hangingState{}
	mk := func(sym market.Symbol, id string) ingest.Event {
		return tradeEvent(market.Trade{Exchange: market.Kraken, Symbol: sym, ID: id, Price: dec("1"), Qty: dec("1"), Side: market.Buy, Time: t0})
	}
	src := eventsSource{mk("BTC-USD", "1"), mk("BTC-USD", "2"), mk("ETH-USD", "1")}
	g := ingest.NewIngester(store, nil, []ingest.Source{src}, ingest.IngesterConfig{Writers: 1, ResumeTimeout: 20 * time.Millisecond}, quiet(), reg)
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still blocked on resume reads")
	}
	if len(store.deadline) != 2 || !store.deadline[0] || !store.deadline[1] {
		t.Errorf("resume reads %v: want one per market, each with a deadline", store.deadline)
	}
	if n := testutil.ToFloat64(findCounter(t, reg, "tickstash_ingest_resume_errors_total")); n != 2 {
		t.Errorf("resume errors = %v, want 2", n)
	}
	var trades int
	for _, b := range store.batches {
		trades += len(b.Trades)
	}
	if trades != 3 {
		t.Errorf("%d trades written, want 3", trades)
	}
}

// failingStore fails every write, as Redis down would.
type failingStore struct{}

var errRedisDown = errors.New("dial tcp: connection refused")

func (failingStore) Write(context.Context, *cache.Batch) (cache.WriteStats, error) {
	return cache.WriteStats{}, errRedisDown
}

// TestShutdownWithRedisDownReportsTheLoss: when the shutdown timeout runs out with
// Redis down, Run says how many records were lost and why.
func TestShutdownWithRedisDownReportsTheLoss(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var evs eventsSource
	for i := range 25 {
		evs = append(evs, tradeEvent(market.Trade{Exchange: market.Kraken, Symbol: "BTC-USD", ID: itoa(i + 1), Price: dec("1"), Qty: dec("1"),
			Side: market.Buy, Time: t0.Add(time.Duration(i) * time.Second)}))
	}
	src := &sliceSource{done: cancel}
	for _, ev := range evs {
		src.trades = append(src.trades, *ev.Trade())
	}
	g := ingest.NewIngester(failingStore{}, nil, []ingest.Source{src}, ingest.IngesterConfig{
		Writers: 1, NoFormingCandles: true, NoResume: true, ShutdownTimeout: 50 * time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
	}, quiet(), prometheus.NewRegistry())
	err := g.Run(ctx)
	var lost *ingest.LostError
	if !errors.As(err, &lost) || !errors.Is(err, ingest.ErrRecordsLost) || !errors.Is(lost.Err, errRedisDown) {
		t.Fatalf("Run = %v, want a *LostError wrapping ErrRecordsLost, with the write error", err)
	}
	// Every trade, and their one-minute candle, closed by the wall-clock watermark.
	if lost.Records != 26 {
		t.Errorf("lost %d records, want 26 (25 trades and their candle)", lost.Records)
	}
}

func findCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}
