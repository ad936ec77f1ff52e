package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

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
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 10, Window: 24 * time.Hour})
	cfg.Lease, cfg.LeaseTTL = 8, time.Minute
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

// TestLeaseExpires: units not spent within the TTL are dropped, not spent later, and an
// identifier that went quiet is checked exactly again.
func TestLeaseExpires(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	calls := &redistest.ScriptCalls{}
	rdb.AddHook(calls)
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 100, Window: 24 * time.Hour})
	cfg.Lease, cfg.LeaseTTL = 8, time.Second
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	lim, _ := newLimiter(t, rdb, cfg)

	// Exact; lease 1 (charged 2); spent; lease 2 (charged 3); one of the two spent.
	expectLeased := []bool{false, false, true, false, true}
	for i, want := range expectLeased {
		if res := allow(t, lim, "bot", 1); !res.Allowed || res.Leased != want {
			t.Fatalf("check %d: allowed=%v leased=%v, want leased=%v", i+1, res.Allowed, res.Leased, want)
		}
	}
	if got := calls.N.Load(); got != 3 {
		t.Fatalf("%d script calls, want 3", got)
	}
	mu.Lock()
	clock = clock.Add(2 * time.Second)
	mu.Unlock()
	if res := allow(t, lim, "bot", 1); !res.Allowed || res.Leased || res.Remaining != 100-7 {
		t.Fatalf("after the TTL: leased=%v remaining=%d, want an exact check leaving %d (the unspent unit lost)", res.Leased, res.Remaining, 100-7)
	}
	if got := calls.N.Load(); got != 4 {
		t.Fatalf("%d script calls, want 4: the expired unit was spent", got)
	}
}

// TestLeaseReset: Reset drops the process's lease along with the counts.
func TestLeaseReset(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 100, Window: 24 * time.Hour})
	cfg.Lease, cfg.LeaseTTL = 8, time.Minute
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
