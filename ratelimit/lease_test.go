package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

// dailyLeased is the config of one GCRA policy "p" of limit a day, leasing up to lease
// units sized for a minute: long enough that no test depends on the clock.
func dailyLeased(limit, lease int64) ratelimit.Config {
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: limit, Window: 24 * time.Hour})
	cfg.Lease, cfg.LeaseTTL = lease, time.Minute
	return cfg
}

// TestLeaseSpendsLocally: a busy identifier's checks are mostly decided in process, each
// policy is charged for what was leased, and Remaining still falls by one a request.
func TestLeaseSpendsLocally(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	calls := &redistest.ScriptCalls{}
	rdb.AddHook(calls)
	cfg := policies(
		ratelimit.Policy{Name: "day", Algorithm: ratelimit.GCRA, Limit: 5000, Window: 24 * time.Hour},
		ratelimit.Policy{Name: "week", Algorithm: ratelimit.SlidingWindow, Limit: 20000, Window: 7 * 24 * time.Hour},
	)
	cfg.Lease, cfg.LeaseTTL = 64, time.Minute
	lim, reg := newLimiter(t, rdb, cfg)

	const n = 1000
	var leased int
	for i := range n {
		res := allow(t, lim, "bot", 1)
		if !res.Allowed || res.Remaining != 5000-1-int64(i) || res.Policy != "day" {
			t.Fatalf("check %d: allowed=%v remaining=%d policy=%s, want allowed with %d left of day",
				i, res.Allowed, res.Remaining, res.Policy, 5000-1-i)
		}
		if w := res.Policies[1].Remaining; w < 20000-1-int64(i)-64 || w > 20000-1-int64(i) {
			t.Fatalf("check %d: week has %d left, want within a lease of %d", i, w, 20000-1-i)
		}
		if res.Leased {
			leased++
		}
	}
	if got := calls.N.Load(); got > n/10 {
		t.Fatalf("%d script calls for %d checks of one identifier, want at most %d", got, n, n/10)
	}
	if got := metricstest.Counter(t, reg, "tickstash_ratelimit_leased_total"); got != float64(leased) || leased < n*9/10 {
		t.Fatalf("leased metric %v, leased results %d of %d", got, leased, n)
	}
	// Redis was charged for every request and at most one lease ahead, on both policies.
	p := peek(t, lim, "bot")
	for i, limit := range []int64{5000, 20000} {
		charged := limit - p.Policies[i].Remaining
		if charged < n || charged > n+64 {
			t.Errorf("%s charged %d in Redis for %d requests, want %d to %d", p.Policies[i].Policy, charged, n, n, n+64)
		}
	}
}

// TestLeaseNearLimitIsExact: a lease the quota cannot cover is refused and the check is
// decided alone, so the identifier gets exactly its limit, with Remaining exact too.
func TestLeaseNearLimitIsExact(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := dailyLeased(10, 8)
	lim, reg := newLimiter(t, rdb, cfg)
	// Checks 2, 4 and 7 try leases of 1, 2 and 4 extra units; the third finds 4 left,
	// is refused and decided exactly.
	last := expectRun(t, lim, "bot", 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
	if last.Allowed || last.RetryAfter <= 0 {
		t.Fatalf("11th check: %+v, want denied with a retry time", last)
	}
	if got := metricstest.Counter(t, reg, "tickstash_ratelimit_leased_total"); got != 3 {
		t.Errorf("leased metric %v, want 3 (checks 3, 5 and 6)", got)
	}
	// The refused lease is not a decision: 10 allowed, 1 denied.
	if got := metricstest.Counter(t, reg, "tickstash_ratelimit_decisions_total", "policy", "p", "result", "denied"); got != 1 {
		t.Errorf("%v denials counted, want 1", got)
	}
	if got := metricstest.Counter(t, reg, "tickstash_ratelimit_decisions_total", "policy", "p", "result", "allowed"); got != 10 {
		t.Errorf("%v allowances counted, want 10", got)
	}
}

// TestLeaseBoundAcrossProcesses: two processes hammering one identifier never pass more
// than its limit between them, and lose at most a lease each to leasing.
func TestLeaseBoundAcrossProcesses(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	const limit, lease = 300, 16
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: limit, Window: 24 * time.Hour})
	cfg.Lease, cfg.Prefix = lease, redistest.Prefix(t, rdb)
	a, _ := newLimiter(t, rdb, cfg)
	b, _ := newLimiter(t, rdb, cfg)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		lim := a
		if g%2 == 1 {
			lim = b
		}
		wg.Go(func() {
			for range 60 {
				res, err := lim.Allow(context.Background(), "shared")
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got > limit || got < limit-2*lease {
		t.Fatalf("%d of 960 requests allowed across two processes, want %d to %d", got, limit-2*lease, limit)
	}
}

// TestLeaseSteadyPace: at a steady pace, whatever it is beside the TTL, a process alone
// on an identifier gets its whole limit (leased units are not lost with time), and an
// identifier slower than one check a TTL never leases.
func TestLeaseSteadyPace(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	calls := &redistest.ScriptCalls{}
	rdb.AddHook(calls)
	for _, pace := range []time.Duration{300 * time.Millisecond, 400 * time.Millisecond, 600 * time.Millisecond, 2 * time.Second} {
		t.Run(pace.String(), func(t *testing.T) {
			before := calls.N.Load()
			var mu sync.Mutex
			clock := time.Unix(1_700_000_000, 0)
			const limit = 500
			cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: limit, Window: 24 * time.Hour})
			cfg.Lease, cfg.LeaseTTL = 10, time.Second
			cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			lim, _ := newLimiter(t, rdb, cfg)
			allowed, leased := 0, 0
			for range 2 * limit {
				res := allow(t, lim, "bot", 1)
				if !res.Allowed {
					break
				}
				allowed++
				if res.Leased {
					leased++
				}
				mu.Lock()
				clock = clock.Add(pace)
				mu.Unlock()
			}
			if allowed != limit {
				t.Fatalf("%d allowed before the first refusal, want the whole limit %d", allowed, limit)
			}
			if pace >= cfg.LeaseTTL {
				if n := calls.N.Load() - before; leased != 0 || n != int64(limit+1) {
					t.Fatalf("one check every %v: %d leased, %d script calls; want none leased, %d calls", pace, leased, n, limit+1)
				}
			} else if leased < limit/2 {
				t.Fatalf("one check every %v: only %d of %d leased", pace, leased, limit)
			}
		})
	}
}

// TestLeaseReset: Reset drops the process's lease along with the counts.
func TestLeaseReset(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := dailyLeased(100, 8)
	lim, _ := newLimiter(t, rdb, cfg)
	for range 4 { // the fourth check leases 2 units
		allow(t, lim, "bot", 1)
	}
	if err := lim.Reset(context.Background(), "bot"); err != nil {
		t.Fatal(err)
	}
	if res := allow(t, lim, "bot", 1); res.Leased || res.Remaining != 99 {
		t.Fatalf("after Reset: leased=%v remaining=%d, want an exact check leaving 99", res.Leased, res.Remaining)
	}
}

// holdReply is a go-redis hook that lets the first script call whose last argument is
// cost run at Redis, then holds its reply until release is closed: a take charged in
// Redis but not yet settled in process.
type holdReply struct {
	cost         int64
	ran, release chan struct{}
	once, freed  sync.Once
}

// newHoldReply returns a hook for cost whose held call is let go at the latest when
// the test ends, so that a failed test does not leave it held.
func newHoldReply(tb testing.TB, cost int64) *holdReply {
	h := &holdReply{cost: cost, ran: make(chan struct{}), release: make(chan struct{})}
	tb.Cleanup(h.free)
	return h
}

// free lets the held call's reply go; it may be called more than once.
func (h *holdReply) free() { h.freed.Do(func() { close(h.release) }) }

// waitRan waits until the held call ran at Redis.
func (h *holdReply) waitRan(tb testing.TB) {
	tb.Helper()
	select {
	case <-h.ran:
	case <-time.After(5 * time.Second):
		tb.Fatalf("no script call with the last argument %d: the take was not the expected one", h.cost)
	}
}

func (h *holdReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *holdReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *holdReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		a := cmd.Args()
		if n := cmd.Name(); (n == "evalsha" || n == "eval") && a[len(a)-1] == h.cost {
			h.once.Do(func() { close(h.ran); <-h.release })
		}
		return err
	}
}

// TestLeaseMixedCostsStayWithinALease: units held when a costlier check takes a lease
// go towards that check, so they cannot also be spent by cheaper checks meanwhile: a
// window sees at most its limit plus one lease, even with a take held across the
// window's end. (Before the fix, 119 cost-1 checks passed in a window of 100, lease 10.)
func TestLeaseMixedCostsStayWithinALease(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	const window, limit, lease = 2 * time.Second, 100, 10
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.FixedWindow, Limit: limit, Window: window})
	cfg.Lease, cfg.LeaseTTL = lease, time.Minute
	cfg.MaxBatch = 1 // checks must pass the held take, not queue behind it
	c := redistest.Client(t)
	hold := newHoldReply(t, 0) // after c: its held call is let go before c closes; cost set below
	lim, _ := newLimiter(t, c, cfg)
	waitWindowStart(t, rdb, window, window-200*time.Millisecond)
	for range 22 { // leases of 1, 2, 4, 8 and 10 units: 9 held after these
		allow(t, lim, "bot", 1)
	}
	// A check of cost 10 now holds 9 units and asks Redis for 1 + 10.
	hold.cost = 10 - 9 + lease
	c.AddHook(hold)
	done := make(chan ratelimit.Result)
	go func() {
		res, _ := lim.AllowN(context.Background(), "bot", 10)
		done <- res
	}()
	hold.waitRan(t)
	waitWindowStart(t, rdb, window, window) // the next window
	// passing counts cost-1 checks until one is denied (or clearly too many pass).
	passing := func() int {
		n := 0
		for n <= limit+lease+20 && allow(t, lim, "bot", 1).Allowed {
			n++
		}
		return n
	}
	inNext := passing()
	hold.free()
	if res := <-done; !res.Allowed {
		t.Fatalf("the cost-10 check: %+v, want allowed", res)
	}
	inNext += passing()
	if inNext > limit+lease {
		t.Fatalf("the next window passed %d cost-1 checks, want at most %d (limit plus one lease)", inNext, limit+lease)
	}
}

// TestLeaseBeforeCachedDenial: units already leased are spent even when a denial of the
// same identifier was cached while they were being taken.
func TestLeaseBeforeCachedDenial(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := dailyLeased(20, 8)
	cfg.MaxBatch = 1 // the exact check must pass the held take, not queue behind it
	hold := newHoldReply(t, 1+8)
	rdb.AddHook(hold)
	lim, _ := newLimiter(t, rdb, cfg)
	for range 11 { // exact, then leases of 1, 2 and 4: 11 charged, none held
		allow(t, lim, "bot", 1)
	}
	taker, denied := make(chan ratelimit.Result), make(chan ratelimit.Result)
	go func() { res, _ := lim.AllowN(context.Background(), "bot", 1); taker <- res }() // takes 1+8: all 20 charged
	hold.waitRan(t)
	go func() { res, _ := lim.AllowN(context.Background(), "bot", 1); denied <- res }() // exact: denied and cached
	if res := <-denied; res.Allowed {
		t.Fatalf("the exact check during the take: %+v, want denied", res)
	}
	hold.free()
	if res := <-taker; !res.Allowed {
		t.Fatalf("the take: %+v, want allowed", res)
	}
	for i := range 8 {
		if res := allow(t, lim, "bot", 1); !res.Allowed || !res.Leased {
			t.Fatalf("check %d after the take: allowed=%v leased=%v cached=%v, want the leased units spent", i+1, res.Allowed, res.Leased, res.Cached)
		}
	}
	if res := allow(t, lim, "bot", 1); res.Allowed {
		t.Fatalf("a check past the limit: %+v, want denied", res)
	}
}

// TestLeaseEndedContext: an ended context gets its error, not leased units.
func TestLeaseEndedContext(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := dailyLeased(100, 8)
	lim, _ := newLimiter(t, rdb, cfg)
	allow(t, lim, "bot", 1)
	allow(t, lim, "bot", 1) // leases a unit
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := lim.AllowN(ctx, "bot", 1); !errors.Is(err, context.Canceled) || res.Allowed {
		t.Fatalf("ended context: allowed=%v leased=%v err=%v, want context.Canceled", res.Allowed, res.Leased, err)
	}
	if res := allow(t, lim, "bot", 1); !res.Leased {
		t.Fatal("the leased unit was used by the refused check")
	}
}

// TestLeaseAcrossRedisRestart: units already leased are spent while Redis is down; then
// checks fail closed within the timeout, none hangs; once Redis is back, checks are
// decided there again (exactly at first: the failed take paused leasing).
func TestLeaseAcrossRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	cfg := dailyLeased(1000, 16)
	cfg.Timeout = 500 * time.Millisecond
	lim, _ := newLimiter(t, c, cfg)
	for range 12 { // exact, then leases of 1, 2, 4 and 8: the last 8 units held
		allow(t, lim, "bot", 1)
	}
	srv.Stop()
	for i := range 8 {
		if res := allow(t, lim, "bot", 1); !res.Allowed || !res.Leased {
			t.Fatalf("held unit %d with Redis down: allowed=%v leased=%v, want spent", i+1, res.Allowed, res.Leased)
		}
	}
	start := time.Now()
	if res, err := lim.Allow(context.Background(), "bot"); !errors.Is(err, ratelimit.ErrUnavailable) || res.Allowed {
		t.Fatalf("past the held units with Redis down: %+v, %v; want ErrUnavailable", res, err)
	}
	if d := time.Since(start); d > 5*cfg.Timeout {
		t.Fatalf("the failed check took %v, want about the timeout %v", d, cfg.Timeout)
	}
	srv.Start()
	var res ratelimit.Result
	var err error
	for range 5 { // the first may meet a pooled connection of the old server
		if res, err = lim.Allow(context.Background(), "bot"); err == nil {
			break
		}
	}
	if err != nil || !res.Allowed || res.Leased || res.Remaining != 999 {
		t.Fatalf("after the restart: %+v, %v; want an exact check of the fresh Redis leaving 999", res, err)
	}
}
