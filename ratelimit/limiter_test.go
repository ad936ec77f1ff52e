package ratelimit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

// newLimiter returns a limiter over rdb with its own key prefix and registry.
func newLimiter(tb testing.TB, rdb redis.UniversalClient, cfg ratelimit.Config) (*ratelimit.Limiter, *prometheus.Registry) {
	tb.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(tb, rdb)
	}
	if cfg.Timeout == 0 {
		// Generous: -race, 2 shared cores and hundreds of goroutines make queueing for a
		// pooled connection slow, and these tests are about decisions, not latency.
		cfg.Timeout = 5 * time.Second
	}
	reg := prometheus.NewRegistry()
	lim, err := ratelimit.NewLimiter(rdb, cfg, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return lim, reg
}

func policies(ps ...ratelimit.Policy) ratelimit.Config {
	return ratelimit.Config{Policies: ps}
}

// allow calls AllowN and fails tb on error.
func allow(tb testing.TB, lim *ratelimit.Limiter, id string, cost int64) ratelimit.Result {
	tb.Helper()
	res, err := lim.AllowN(context.Background(), id, cost)
	if err != nil {
		tb.Fatalf("AllowN(%q, %d): %v", id, cost, err)
	}
	return res
}

func peek(tb testing.TB, lim *ratelimit.Limiter, id string) ratelimit.Result {
	tb.Helper()
	res, err := lim.Peek(context.Background(), id)
	if err != nil {
		tb.Fatalf("Peek(%q): %v", id, err)
	}
	return res
}

// serverNow is the Redis server time a result was decided at.
func serverNow(r ratelimit.PolicyResult) time.Time { return r.ResetAt.Add(-r.ResetAfter) }

// waitWindowStart sleeps until just after the next start of an epoch-aligned window on
// the Redis server's clock, unless the current window has at least left of it to run.
func waitWindowStart(tb testing.TB, rdb redis.UniversalClient, window, left time.Duration) {
	tb.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	into := time.Duration(now.UnixMicro()%window.Microseconds()) * time.Microsecond
	if window-into < left {
		time.Sleep(window - into + 2*time.Millisecond)
	}
}

// expectRun checks n allowed requests with the given remaining counts, then a denial.
func expectRun(tb testing.TB, lim *ratelimit.Limiter, id string, remaining ...int64) ratelimit.Result {
	tb.Helper()
	for i, want := range remaining {
		res := allow(tb, lim, id, 1)
		if !res.Allowed || res.Remaining != want || res.RetryAfter != 0 {
			tb.Fatalf("request %d: allowed=%v remaining=%d retry=%v, want allowed with remaining %d",
				i+1, res.Allowed, res.Remaining, res.RetryAfter, want)
		}
	}
	res := allow(tb, lim, id, 1)
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 {
		tb.Fatalf("request %d: allowed=%v remaining=%d retry=%v, want denied with a retry time",
			len(remaining)+1, res.Allowed, res.Remaining, res.RetryAfter)
	}
	return res
}

func TestFixedWindow(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 3, Window: time.Second}))

	waitWindowStart(t, rdb, time.Second, 700*time.Millisecond)
	denied := expectRun(t, lim, "u", 2, 1, 0)
	if denied.RetryAfter > time.Second || denied.RetryAfter != denied.ResetAfter {
		t.Fatalf("retry after %v, reset after %v: want both the rest of the 1s window", denied.RetryAfter, denied.ResetAfter)
	}
	if got := serverNow(denied.Policies[0]).Add(denied.RetryAfter); got.UnixMicro()%1e6 != 0 {
		t.Fatalf("denial lifts at %v, want a whole second (epoch-aligned window)", got)
	}
	time.Sleep(denied.RetryAfter + time.Millisecond)
	expectRun(t, lim, "u", 2, 1, 0) // a new window: the full limit again
}

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	const limit, window = 4, time.Second
	lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "sw", Algorithm: ratelimit.SlidingWindow, Limit: limit, Window: window}))

	waitWindowStart(t, rdb, window, 700*time.Millisecond)
	denied := expectRun(t, lim, "u", 3, 2, 1, 0)
	// All 4 units sit in the current window: the next window starts with them weighted
	// 4·(1-e) and one unit fits as soon as floor(4·(1-e)) <= 3, i.e. just after it starts.
	lift := serverNow(denied.Policies[0]).Add(denied.RetryAfter)
	if us := lift.UnixMicro() % window.Microseconds(); us > 10 {
		t.Fatalf("denial lifts %dµs into a window, want at its start", us)
	}
	time.Sleep(denied.RetryAfter + time.Millisecond)
	expectRun(t, lim, "u", 0)

	// In the second window, previous = 4 and current = 1: the estimate decays with the
	// elapsed part of the window, exactly as floor(4·(1-e)) + 1.
	for range 5 {
		r := peek(t, lim, "u").Policies[0]
		now := serverNow(r).UnixMicro()
		elapsed := now % window.Microseconds()
		want := int64(limit - (4*(window.Microseconds()-elapsed))/window.Microseconds() - 1)
		if r.Remaining != want {
			t.Fatalf("%dµs into the window: remaining %d, want %d", elapsed, r.Remaining, want)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "tb", Algorithm: ratelimit.TokenBucket, Limit: 2, Window: 3 * time.Second, Burst: 5}))

	denied := expectRun(t, lim, "u", 4, 3, 2, 1, 0)
	if denied.Limit != 5 {
		t.Fatalf("limit %d, want the burst 5", denied.Limit)
	}
	if denied.RetryAfter > 3*time.Second {
		t.Fatalf("retry after %v, want within one refill interval", denied.RetryAfter)
	}
	// Full again after ceil(5/2) = 3 refills from the bucket's first use. The refill
	// interval is long beside what a loaded machine takes for these calls.
	if denied.ResetAfter <= 6*time.Second || denied.ResetAfter > 9*time.Second {
		t.Fatalf("reset after %v, want in (6s, 9s]", denied.ResetAfter)
	}
	time.Sleep(denied.RetryAfter + time.Millisecond)
	expectRun(t, lim, "u", 1, 0) // one refill: exactly Limit tokens

	// A weighted request larger than the tokens left is denied, not overdrawn.
	time.Sleep(3 * time.Second)
	if res := allow(t, lim, "u", 3); res.Allowed || res.Remaining != 2 {
		t.Fatalf("cost 3 with 2 tokens: allowed=%v remaining=%d, want denied with 2 left", res.Allowed, res.Remaining)
	}
	if res := allow(t, lim, "u", 2); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("cost 2 with 2 tokens: allowed=%v remaining=%d, want allowed with 0 left", res.Allowed, res.Remaining)
	}
}

func TestGCRA(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	// One unit per second (the emission interval), bursts of 3: an interval long beside
	// what a loaded machine takes between two calls.
	const interval = time.Second
	lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "g", Algorithm: ratelimit.GCRA, Limit: 1, Window: interval, Burst: 3}))

	first := allow(t, lim, "u", 1)
	if !first.Allowed || first.Remaining != 2 || first.ResetAfter != interval {
		t.Fatalf("first: allowed=%v remaining=%d reset=%v, want allowed, 2 left, reset in %v", first.Allowed, first.Remaining, first.ResetAfter, interval)
	}
	start := time.Now()
	denied := expectRun(t, lim, "u", 1, 0)
	if denied.RetryAfter > interval {
		t.Fatalf("retry after %v, want at most one emission interval", denied.RetryAfter)
	}
	time.Sleep(denied.RetryAfter + time.Millisecond)
	denied2 := expectRun(t, lim, "u", 0) // one unit per interval, no more
	took := time.Since(start)
	// The unit freed at the first denial's retry time was taken at once, so the second
	// denial waits one emission interval less however late the calls came after that
	// time: at most took - the first retry (measured here around both denials, with a
	// little slack for the clocks: Redis's time decides). A loaded machine's late sleep
	// shortens the wait; nothing lengthens it past the interval.
	late := took - denied.RetryAfter
	if low := interval - late - 20*time.Millisecond; denied2.RetryAfter < low || denied2.RetryAfter > interval {
		t.Fatalf("retry after %v (%v after the first retry time), want between %v and %v", denied2.RetryAfter, late, low, interval)
	}
}

func TestWeightedRequestMustFit(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	for _, algo := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindow, ratelimit.TokenBucket, ratelimit.GCRA} {
		t.Run(algo.String(), func(t *testing.T) {
			lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "p", Algorithm: algo, Limit: 5, Window: time.Hour}))
			if res := allow(t, lim, "u", 3); !res.Allowed || res.Remaining != 2 {
				t.Fatalf("cost 3 of 5: allowed=%v remaining=%d", res.Allowed, res.Remaining)
			}
			if res := allow(t, lim, "u", 3); res.Allowed || res.Remaining != 2 || res.RetryAfter <= 0 {
				t.Fatalf("cost 3 with 2 left: allowed=%v remaining=%d retry=%v, want denied", res.Allowed, res.Remaining, res.RetryAfter)
			}
			if res := allow(t, lim, "u", 2); !res.Allowed || res.Remaining != 0 {
				t.Fatalf("cost 2 with 2 left: allowed=%v remaining=%d, want allowed (the denial charged nothing)", res.Allowed, res.Remaining)
			}
			if _, err := lim.AllowN(context.Background(), "u", 6); !errors.Is(err, ratelimit.ErrInvalidCost) {
				t.Fatalf("cost 6 of 5: err %v, want ErrInvalidCost", err)
			}
			if _, err := lim.AllowN(context.Background(), "u", 0); !errors.Is(err, ratelimit.ErrInvalidCost) {
				t.Fatalf("cost 0: err %v, want ErrInvalidCost", err)
			}
		})
	}
}

func TestMultiPolicyNoChargeOnDeny(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	for _, algo := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindow, ratelimit.TokenBucket, ratelimit.GCRA} {
		t.Run(algo.String(), func(t *testing.T) {
			lim, _ := newLimiter(t, rdb, policies(
				ratelimit.Policy{Name: "big", Algorithm: algo, Limit: 100, Window: time.Hour},
				ratelimit.Policy{Name: "small", Algorithm: algo, Limit: 3, Window: time.Hour},
			))
			res := allow(t, lim, "u", 2)
			if !res.Allowed || res.Policy != "small" || res.Remaining != 1 {
				t.Fatalf("cost 2: allowed=%v policy=%q remaining=%d, want allowed, small with 1 left", res.Allowed, res.Policy, res.Remaining)
			}
			for range 3 {
				res = allow(t, lim, "u", 2)
				if res.Allowed || res.Policy != "small" {
					t.Fatalf("cost 2 with 1 left: allowed=%v policy=%q, want denied by small", res.Allowed, res.Policy)
				}
				if big := res.Policies[0]; !big.Allowed || big.Remaining != 98 {
					t.Fatalf("big: allowed=%v remaining=%d, want allowed, 98 left and uncharged", big.Allowed, big.Remaining)
				}
			}
			p := peek(t, lim, "u")
			if p.Policies[0].Remaining != 98 || p.Policies[1].Remaining != 1 {
				t.Fatalf("after denials: remaining big=%d small=%d, want 98 and 1", p.Policies[0].Remaining, p.Policies[1].Remaining)
			}
			res = allow(t, lim, "u", 1)
			if !res.Allowed || res.Policies[0].Remaining != 97 || res.Policies[1].Remaining != 0 {
				t.Fatalf("cost 1: %+v, want allowed with 97 and 0 left", res)
			}
		})
	}
}

func TestPeekAndReset(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, _ := newLimiter(t, rdb, policies(
		ratelimit.Policy{Name: "a", Algorithm: ratelimit.SlidingWindow, Limit: 2, Window: time.Hour},
		ratelimit.Policy{Name: "b", Algorithm: ratelimit.GCRA, Limit: 5, Window: time.Hour},
	))
	for range 5 {
		if p := peek(t, lim, "u"); !p.Allowed || p.Remaining != 2 {
			t.Fatalf("peek on a fresh identifier: allowed=%v remaining=%d, want allowed with 2", p.Allowed, p.Remaining)
		}
	}
	expectRun(t, lim, "u", 1, 0)
	if p := peek(t, lim, "u"); p.Allowed || p.Remaining != 0 || p.Policy != "a" {
		t.Fatalf("peek when exhausted: %+v, want denied by a", p)
	}
	if p := peek(t, lim, "u"); p.Policies[1].Remaining != 3 {
		t.Fatalf("peek: b has %d left, want 3", p.Policies[1].Remaining)
	}
	if err := lim.Reset(context.Background(), "u"); err != nil {
		t.Fatal(err)
	}
	expectRun(t, lim, "u", 1, 0) // also proves the local cache forgot the denial
	if err := lim.Reset(context.Background(), ""); !errors.Is(err, ratelimit.ErrEmptyIdentifier) {
		t.Fatalf("Reset(\"\"): %v, want ErrEmptyIdentifier", err)
	}
}

func TestEveryKeyHasTTL(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, rdb)
	cfg := policies(
		ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 10, Window: time.Minute},
		ratelimit.Policy{Name: "sw", Algorithm: ratelimit.SlidingWindow, Limit: 10, Window: time.Minute},
		ratelimit.Policy{Name: "tb", Algorithm: ratelimit.TokenBucket, Limit: 1, Window: time.Minute, Burst: 10},
		ratelimit.Policy{Name: "g", Algorithm: ratelimit.GCRA, Limit: 10, Window: time.Minute},
	)
	cfg.Prefix = prefix
	lim, _ := newLimiter(t, rdb, cfg)
	for _, id := range []string{"u1", "u{2}", "%7B"} {
		allow(t, lim, id, 3)
	}
	// Upper bounds: the window end, two windows, refill of 3 tokens, 3 emission intervals.
	bound := map[string]time.Duration{"fw": time.Minute, "sw": 2 * time.Minute, "tb": 3 * time.Minute, "g": 18 * time.Second}
	keys := redistest.Keys(t, rdb, prefix+"*")
	if len(keys) != 12 {
		t.Fatalf("%d keys %q, want 12 (3 identifiers x 4 policies)", len(keys), keys)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		policy := k[strings.LastIndex(k, ":")+1:]
		// Expiries are rounded up to the next millisecond.
		if ttl <= 0 || ttl > bound[policy]+time.Millisecond {
			t.Errorf("PTTL %s = %v, want in (0, %v]", k, ttl, bound[policy]+time.Millisecond)
		}
		if !strings.HasPrefix(k, prefix+":rl:{") {
			t.Errorf("key %s lacks the hash tag", k)
		}
	}
	// One EXISTS per key: the two live in different cluster slots.
	for _, k := range []string{prefix + ":rl:{u%7B2%7D}:fw", prefix + ":rl:{%257B}:fw"} {
		if n, err := rdb.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("escaped identifier key %s: exists %d, %v", k, n, err)
		}
	}
}

func TestConcurrentNoOverAdmission(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	for _, algo := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindow, ratelimit.TokenBucket, ratelimit.GCRA} {
		t.Run(algo.String(), func(t *testing.T) {
			const limit, callers = 50, 400
			lim, _ := newLimiter(t, rdb, policies(
				ratelimit.Policy{Name: "p", Algorithm: algo, Limit: limit, Window: 24 * time.Hour},
				ratelimit.Policy{Name: "q", Algorithm: ratelimit.GCRA, Limit: 1000, Window: time.Hour},
			))
			var allowed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Go(func() {
					<-start
					res, err := lim.AllowN(context.Background(), "shared", 1)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if got := allowed.Load(); got != limit {
				t.Fatalf("%d of %d concurrent requests allowed, want exactly %d", got, callers, limit)
			}
			if q := peek(t, lim, "shared").Policies[1].Remaining; q != 1000-limit {
				t.Fatalf("q has %d left, want %d: denials were charged", q, 1000-limit)
			}
		})
	}
}

// countingHook counts the commands sent to Redis.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestLocalCacheAvoidsRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	hook := &countingHook{}
	rdb.AddHook(hook)
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	cfg := policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.FixedWindow, Limit: 2, Window: time.Hour})
	cfg.Now = now
	lim, reg := newLimiter(t, rdb, cfg)

	allow(t, lim, "u", 2)
	denied := allow(t, lim, "u", 1)
	if denied.Allowed || denied.Cached {
		t.Fatalf("first denial: %+v, want denied by Redis", denied)
	}
	before := hook.n.Load()
	for range 100 {
		res := allow(t, lim, "u", 1)
		if res.Allowed || !res.Cached || res.RetryAfter != denied.RetryAfter || res.Policy != "p" {
			t.Fatalf("repeat: %+v, want the cached denial", res)
		}
	}
	if got := hook.n.Load() - before; got != 0 {
		t.Fatalf("%d Redis commands for 100 blocked checks, want 0", got)
	}
	if got := metricstest.Counter(t, reg, "tickstash_ratelimit_local_cache_hits_total"); got != 100 {
		t.Fatalf("local cache hits metric %v, want 100", got)
	}
	allow(t, lim, "other", 1) // other identifiers still go to Redis
	if got := hook.n.Load() - before; got == 0 {
		t.Fatal("another identifier was not checked in Redis")
	}

	// Half-way, the cached retry time has shrunk by the local clock.
	mu.Lock()
	clock = clock.Add(denied.RetryAfter / 2)
	mu.Unlock()
	if res := allow(t, lim, "u", 1); !res.Cached || res.RetryAfter != denied.RetryAfter-denied.RetryAfter/2 {
		t.Fatalf("half-way: cached=%v retry=%v, want cached with %v", res.Cached, res.RetryAfter, denied.RetryAfter-denied.RetryAfter/2)
	}
	// Past the retry time the limiter asks Redis again (which still denies: the window
	// has not really ended).
	mu.Lock()
	clock = clock.Add(denied.RetryAfter)
	mu.Unlock()
	before = hook.n.Load()
	if res := allow(t, lim, "u", 1); res.Cached || res.Allowed {
		t.Fatalf("after expiry: %+v, want denied by Redis", res)
	}
	if hook.n.Load() == before {
		t.Fatal("expired cache entry answered without Redis")
	}
}

func TestLocalCacheCheaperRequestGoesToRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, _ := newLimiter(t, rdb, policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.FixedWindow, Limit: 5, Window: time.Hour}))
	allow(t, lim, "u", 4)
	if res := allow(t, lim, "u", 3); res.Allowed {
		t.Fatal("cost 3 with 1 left allowed")
	}
	if res := allow(t, lim, "u", 1); !res.Allowed || res.Cached {
		t.Fatalf("cost 1 with 1 left: %+v, want allowed by Redis despite the cached cost-3 denial", res)
	}
}

// slowRedis never answers until its context ends.
type slowRedis struct{ redis.UniversalClient }

func (slowRedis) EvalSha(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	<-ctx.Done()
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(ctx.Err())
	return cmd
}

func (s slowRedis) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return s.EvalSha(ctx, src, keys, args...)
}

func TestFailOpenAndClosed(t *testing.T) {
	t.Parallel()
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = closed.Close() })
	pol := ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Second}

	for _, tc := range []struct {
		name    string
		rdb     redis.UniversalClient
		timeout time.Duration
	}{
		{"connection refused", closed, 0},
		{"timeout", slowRedis{closed}, 30 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, open := range []bool{false, true} {
				reg := prometheus.NewRegistry()
				lim, err := ratelimit.NewLimiter(tc.rdb, ratelimit.Config{Policies: []ratelimit.Policy{pol}, FailOpen: open, Timeout: tc.timeout}, reg)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				res, err := lim.Allow(context.Background(), "u")
				if took := time.Since(start); took > time.Second {
					t.Fatalf("fail-open=%v: took %v", open, took)
				}
				if open {
					if err != nil || !res.Allowed || !res.FailedOpen {
						t.Fatalf("fail open: %+v, %v; want allowed, FailedOpen, no error", res, err)
					}
					if got := metricstest.Counter(t, reg, "tickstash_ratelimit_fail_open_total"); got != 1 {
						t.Fatalf("fail-open metric %v, want 1", got)
					}
				} else if !errors.Is(err, ratelimit.ErrUnavailable) || res.Allowed {
					t.Fatalf("fail closed: %+v, %v; want denied with ErrUnavailable", res, err)
				}
			}
		})
	}

	t.Run("caller context ends", func(t *testing.T) {
		lim, err := ratelimit.NewLimiter(slowRedis{closed}, ratelimit.Config{Policies: []ratelimit.Policy{pol}, FailOpen: true, Timeout: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if res, err := lim.Allow(ctx, "u"); !errors.Is(err, context.DeadlineExceeded) || res.Allowed {
			t.Fatalf("%+v, %v: want the caller's deadline error, not a fail-open", res, err)
		}
	})
}

func TestDecisionMetrics(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, reg := newLimiter(t, rdb, policies(
		ratelimit.Policy{Name: "big", Algorithm: ratelimit.FixedWindow, Limit: 10, Window: time.Hour},
		ratelimit.Policy{Name: "small", Algorithm: ratelimit.FixedWindow, Limit: 1, Window: time.Hour},
	))
	allow(t, lim, "u", 1)
	allow(t, lim, "u", 1)
	want := `
# HELP tickstash_ratelimit_decisions_total Rate-limit decisions by policy and result (allowed, denied, fail_open, fail_closed).
# TYPE tickstash_ratelimit_decisions_total counter
tickstash_ratelimit_decisions_total{limiter="default",policy="big",result="allowed"} 2
tickstash_ratelimit_decisions_total{limiter="default",policy="big",result="denied"} 0
tickstash_ratelimit_decisions_total{limiter="default",policy="big",result="fail_closed"} 0
tickstash_ratelimit_decisions_total{limiter="default",policy="big",result="fail_open"} 0
tickstash_ratelimit_decisions_total{limiter="default",policy="small",result="allowed"} 1
tickstash_ratelimit_decisions_total{limiter="default",policy="small",result="denied"} 1
tickstash_ratelimit_decisions_total{limiter="default",policy="small",result="fail_closed"} 0
tickstash_ratelimit_decisions_total{limiter="default",policy="small",result="fail_open"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tickstash_ratelimit_decisions_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "tickstash_ratelimit_script_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("script duration histogram: %d series, %v", n, err)
	}
	// A second limiter with another Name shares the registry.
	if _, err := ratelimit.NewLimiter(rdb, ratelimit.Config{Name: "deliveries", Policies: lim.Policies()}, reg); err != nil {
		t.Fatal(err)
	}
}

func TestNewLimiterRejectsBadConfig(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ok := ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Second}
	for name, cfg := range map[string]ratelimit.Config{
		"no policies":    {},
		"bad name":       policies(ratelimit.Policy{Name: "a b", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Second}),
		"duplicate":      policies(ok, ok),
		"no algorithm":   policies(ratelimit.Policy{Name: "p", Limit: 1, Window: time.Second}),
		"zero limit":     policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Window: time.Second}),
		"tiny window":    policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Microsecond}),
		"negative burst": policies(ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Second, Burst: -1}),
		"brace prefix":   {Policies: []ratelimit.Policy{ok}, Prefix: "a{b}"},
		"negative lease": {Policies: []ratelimit.Policy{ok}, Lease: -1},
		"negative TTL":   {Policies: []ratelimit.Policy{ok}, Lease: 1, LeaseTTL: -time.Second},
	} {
		if _, err := ratelimit.NewLimiter(rdb, cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "ratelimit: ") {
			t.Errorf("%s: err %v, want a ratelimit: error", name, err)
		}
	}
	lim, _ := newLimiter(t, rdb, policies(ok))
	if _, err := lim.Allow(context.Background(), ""); !errors.Is(err, ratelimit.ErrEmptyIdentifier) {
		t.Errorf("empty identifier: %v", err)
	}
}
