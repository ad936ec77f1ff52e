package leaderboard

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
)

// Concurrent writes share script calls, and every one lands exactly: the sums are the
// sums of the deltas, and each IncrementAndRank saw a rank.
func TestConcurrentWritesShareCalls(t *testing.T) {
	ctx := context.Background()
	s, rdb, _ := newStore(t, Config{Boards: []Board{{Name: "sum", Ranking: Competition}}})
	calls := &redistest.ScriptCalls{}
	rdb.AddHook(calls)
	const goroutines, each, members = 32, 40, 7
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := "m" + strconv.Itoa((g+i)%members)
				e, err := s.IncrementAndRank(ctx, "sum", Day, m, decimal.New(int64(g*each+i), -3))
				if err != nil || e.Rank < 1 || e.Rank > members {
					t.Errorf("%s: %+v %v", m, e, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := make(map[string]decimal.Decimal)
	for g := range goroutines {
		for i := range each {
			m := "m" + strconv.Itoa((g+i)%members)
			want[m] = want[m].Add(decimal.New(int64(g*each+i), -3))
		}
	}
	for _, w := range []Window{AllTime, Day, Week, Month} {
		top, err := s.Top(ctx, "sum", w, members)
		if err != nil || len(top) != members {
			t.Fatalf("%s: %d entries, %v", w, len(top), err)
		}
		for _, e := range top {
			if !e.Value.Equal(want[e.Member]) {
				t.Errorf("%s %s = %s, want %s", w, e.Member, e.Value, want[e.Member])
			}
		}
	}
	if n := calls.N.Load(); n >= goroutines*each {
		t.Errorf("%d script calls for %d writes: none shared a call", n, goroutines*each)
	}
}

// The writes of one call keep their own outcomes, in order: a sum out of limits writes
// nothing of its write and stops none after it; the second report with one id is a
// duplicate; a member written again sees its earlier writes.
func TestBatchKeepsEachWritesOutcome(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{})
	huge := decimal.RequireFromString(strings.Repeat("1", MaxDigits)) // 80 significant digits
	reqs := []writeReq{
		{mode: "i", board: BoardTraderPnL, member: "a", value: d("1.5")},
		{mode: "i", board: BoardTraderPnL, member: "b", value: huge},
		{mode: "i", board: BoardTraderPnL, member: "b", value: huge.Mul(d("0.1"))},
		{mode: "i", board: BoardTraderPnL, member: "a", value: d("2"), dedup: "r1", rank: Day, ranked: true},
		{mode: "i", board: BoardTraderPnL, member: "a", value: d("100"), dedup: "r1"},
		{mode: "i", board: BoardTraderPnL, member: "b", value: huge, rank: Week, ranked: true},
	}
	var st *boardState
	var batch []*pendingWrite
	for _, r := range reqs {
		b, w, err := s.prepare(r)
		if err != nil {
			t.Fatal(err)
		}
		w.done = make(chan struct{})
		st, batch = b, append(batch, w)
	}
	s.sendWrites(st, batch)
	type outcome struct {
		value, rankValue string
		rank             int64
		err              error
	}
	var got []outcome
	for _, w := range batch {
		<-w.done
		if w.err != nil {
			t.Fatal(w.err)
		}
		r, err := s.result(w)
		got = append(got, outcome{r.value, r.rankValue, r.rank, err})
	}
	// 11…1 + 11…1.1: 81 significant digits, one too many.
	if sum := huge.Add(huge.Mul(d("0.1"))).String(); len(strings.TrimRight(strings.Replace(sum, ".", "", 1), "0")) <= MaxDigits {
		t.Fatalf("test setup: %s fits", sum)
	}
	if got[0].value != "1.5" || got[0].err != nil {
		t.Errorf("a +1.5: %+v", got[0])
	}
	if got[1].value != huge.String() || got[1].err != nil {
		t.Errorf("b +huge: %+v", got[1])
	}
	if !errors.Is(got[2].err, ErrInvalidValue) {
		t.Errorf("b past the limits: %+v, want ErrInvalidValue", got[2])
	}
	if got[3].value != "3.5" || got[3].rank != 2 || got[3].rankValue != "3.5" || got[3].err != nil {
		t.Errorf("a +2 (report r1), ranked: %+v, want 3.5 at rank 2", got[3])
	}
	if !errors.Is(got[4].err, errDuplicate) {
		t.Errorf("a +100 (report r1 again): %+v, want a duplicate", got[4])
	}
	double := huge.Add(huge).String()
	if got[5].value != double || got[5].rank != 1 || got[5].rankValue != double || got[5].err != nil {
		t.Errorf("b +huge again, ranked: %+v, want %s at rank 1", got[5], double)
	}
	top, err := s.Top(ctx, BoardTraderPnL, Month, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top[0].Member != "b" || top[0].Value.String() != double || top[1].Member != "a" || top[1].Value.String() != "3.5" {
		t.Errorf("month after the batch: %v", lines(top))
	}
}

// A write whose caller leaves before its batch is sent is never sent.
func TestAbandonedWriteIsNotSent(t *testing.T) {
	s, _, _ := newStore(t, Config{})
	st, err := s.board(BoardTraderPnL)
	if err != nil {
		t.Fatal(err)
	}
	// Batches "in flight": the write queues behind them.
	st.batch.mu.Lock()
	st.batch.inFlight = maxWriteFlights
	st.batch.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Increment(ctx, BoardTraderPnL, "gone", d("5"))
		errc <- err
	}()
	for {
		st.batch.mu.Lock()
		n := len(st.batch.queue)
		st.batch.mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Increment after its context ended: %v", err)
	}
	s.flushWrites(st) // the batch "returns": the queue is sent
	if _, err := s.Rank(context.Background(), BoardTraderPnL, AllTime, "gone"); !errors.Is(err, ErrNotRanked) {
		t.Fatalf("Rank of the abandoned write's member: %v, want ErrNotRanked", err)
	}
	if v, err := s.Increment(context.Background(), BoardTraderPnL, "here", d("1")); err != nil || v.String() != "1" {
		t.Fatalf("a write after: %v %v", v, err)
	}
}

// A write whose context has already ended is refused before it is queued.
func TestWriteWithEndedContext(t *testing.T) {
	s, _, _ := newStore(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Increment(ctx, BoardTraderPnL, "late", d("1")); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "late") {
		t.Fatalf("Increment with an ended context: %v", err)
	}
	if _, err := s.Rank(context.Background(), BoardTraderPnL, AllTime, "late"); !errors.Is(err, ErrNotRanked) {
		t.Fatalf("Rank of the refused write's member: %v, want ErrNotRanked", err)
	}
}

// A Redis restart under concurrent writers: while it is down every write fails with an
// error (none hangs, none is lost silently), and once it is back, with its scripts gone,
// the board's batcher is not stuck: writes run again and land exactly.
func TestBatchedWritesAcrossRedisRestart(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	s, _, _ := newStoreOn(t, rdb, Config{})
	ctx := context.Background()
	if _, err := s.Increment(ctx, BoardTraderPnL, "before", d("1")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := s.Increment(cctx, BoardTraderPnL, "down"+strconv.Itoa(g), d("1")); err != nil {
				failed.Add(1)
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("a write waited out its context instead of failing: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Fatalf("%d of 16 writes failed with Redis down, want all", failed.Load())
	}
	srv.Start()
	for g := range 16 {
		wg.Go(func() {
			if _, err := s.Increment(ctx, BoardTraderPnL, "after", decimal.New(int64(g), 0)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	e, err := s.Rank(ctx, BoardTraderPnL, AllTime, "after")
	if err != nil || e.Value.String() != "120" { // 0 + 1 + … + 15
		t.Fatalf("after the restart: %+v %v, want 120", e, err)
	}
}
