package ratelimit_test

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

// TestBatching checks that concurrent checks of one identifier share script calls and
// are still exact: the limit is reached and not passed, in every batch size, and
// denials charge nothing. MaxBatch 1 sends one call per check.
func TestBatching(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	hook := &redistest.ScriptCalls{}
	rdb.AddHook(hook)
	for _, tc := range []struct {
		name     string
		maxBatch int
	}{{"default", 0}, {"max 7", 7}, {"off", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			const limit, callers = 50, 400
			cfg := policies(
				ratelimit.Policy{Name: "p", Algorithm: ratelimit.SlidingWindow, Limit: limit, Window: 24 * time.Hour},
				ratelimit.Policy{Name: "q", Algorithm: ratelimit.GCRA, Limit: 1000, Window: time.Hour},
			)
			cfg.MaxBatch = tc.maxBatch
			cfg.LocalCacheSize = -1 // every check goes to Redis
			lim, _ := newLimiter(t, rdb, cfg)
			before := hook.N.Load()
			var allowed atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Go(func() {
					<-start
					res, err := lim.Allow(context.Background(), "shared")
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					}
					if res.Allowed != (res.Policies[0].Allowed && res.Policies[1].Allowed) {
						t.Errorf("result %+v: Allowed disagrees with its policies", res)
					}
				})
			}
			close(start)
			wg.Wait()
			calls := hook.N.Load() - before
			if got := allowed.Load(); got != limit {
				t.Fatalf("%d of %d concurrent requests allowed, want exactly %d", got, callers, limit)
			}
			if q := peek(t, lim, "shared").Policies[1].Remaining; q != 1000-limit {
				t.Fatalf("q has %d left, want %d: denials were charged", q, 1000-limit)
			}
			switch tc.maxBatch {
			case 1:
				if calls != callers {
					t.Fatalf("%d script calls for %d checks with batching off, want one each", calls, callers)
				}
			default:
				most := int64(cmp.Or(tc.maxBatch, 64))
				if least := (callers + most - 1) / most; calls >= callers || calls < least {
					t.Fatalf("%d script calls for %d concurrent checks, want fewer (batched) and at least %d", calls, callers, least)
				}
			}
			t.Logf("%d script calls for %d checks", calls, callers)
		})
	}
}

// TestBatchSequential checks that checks of one identifier in one batch see each
// other's charges in arrival order: remaining counts down without gaps or repeats.
func TestBatchSequential(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	cfg := policies(ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 1000, Window: 24 * time.Hour})
	lim, _ := newLimiter(t, rdb, cfg)
	const callers = 200
	var mu sync.Mutex
	seen := make(map[int64]bool)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			res, err := lim.AllowN(context.Background(), "u", 2)
			if err != nil || !res.Allowed {
				t.Errorf("%+v, %v: want allowed", res, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[res.Remaining] {
				t.Errorf("remaining %d reported twice", res.Remaining)
			}
			seen[res.Remaining] = true
		})
	}
	wg.Wait()
	for r := int64(1000 - 2); r >= 1000-2*callers; r -= 2 {
		if !seen[r] {
			t.Fatalf("no check left %d remaining: charges overlapped", r)
		}
	}
}

// TestBatchTouchesEachKeyOnce checks that a batch of checks of one identifier reads
// and writes each of its keys once, however many checks it holds, and still counts
// exactly: on a Redis of the test's own, whose INFO commandstats count only this work,
// GETs and SETs are at most one per key per script call while the calls are batched.
func TestBatchTouchesEachKeyOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	cfg := policies(
		ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 10_000, Window: 24 * time.Hour},
		ratelimit.Policy{Name: "g", Algorithm: ratelimit.GCRA, Limit: 100_000, Window: time.Hour},
	)
	cfg.LocalCacheSize = -1
	lim, _ := newLimiter(t, rdb, cfg)
	allow(t, lim, "hot", 1) // loads the script
	if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	const callers = 300
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			if res, err := lim.Allow(context.Background(), "hot"); err != nil || !res.Allowed {
				t.Errorf("%+v, %v: want allowed", res, err)
			}
		})
	}
	close(start)
	wg.Wait()
	stats := commandCalls(t, rdb)
	if stats["evalsha"] >= callers {
		t.Fatalf("%d script calls for %d concurrent checks: none batched", stats["evalsha"], callers)
	}
	for _, c := range []string{"get", "set"} {
		if stats[c] > 2*stats["evalsha"] {
			t.Errorf("%d %s calls in %d script calls over 2 keys: a key was touched more than once a call", stats[c], c, stats["evalsha"])
		}
	}
	if fw := peek(t, lim, "hot").Policies[0].Remaining; fw != 10_000-1-callers {
		t.Fatalf("fw has %d left after %d checks, want %d", fw, 1+callers, 10_000-1-callers)
	}
	t.Logf("%v", stats)
}

// commandCalls returns the calls of each command since the last CONFIG RESETSTAT.
func commandCalls(t *testing.T, rdb *redis.Client) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	for _, line := range strings.Split(rdb.Info(context.Background(), "commandstats").Val(), "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(stats, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// stuckRedis holds each script call until a value on release lets it through, or
// answers it with its context's error.
type stuckRedis struct {
	redis.UniversalClient
	release chan struct{}
	calls   atomic.Int64
}

func (s *stuckRedis) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	s.calls.Add(1)
	select {
	case s.release <- struct{}{}:
		return s.UniversalClient.EvalSha(ctx, sha, keys, args...)
	case <-ctx.Done():
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

func (s *stuckRedis) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return s.UniversalClient.Eval(ctx, src, keys, args...)
}

// TestBatchCallerLeaves checks that a caller whose context ends gets its context's
// error without cutting short the call its batch-mates still wait for.
func TestBatchCallerLeaves(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	stuck := &stuckRedis{UniversalClient: rdb, release: make(chan struct{})}
	cfg := policies(ratelimit.Policy{Name: "fw", Algorithm: ratelimit.FixedWindow, Limit: 10, Window: time.Hour})
	cfg.Prefix = redistest.Prefix(t, rdb)
	cfg.Timeout = -1
	lim, err := ratelimit.NewLimiter(stuck, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first check holds the only call in flight; the next two queue behind it and
	// go together in the second call.
	first := make(chan error, 1)
	go func() {
		_, err := lim.Allow(context.Background(), "a")
		first <- err
	}()
	for stuck.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithCancel(context.Background())
	leaver := make(chan error, 1)
	go func() {
		_, err := lim.Allow(short, "b")
		leaver <- err
	}()
	stayer := make(chan ratelimit.Result, 1)
	go func() {
		res, err := lim.Allow(context.Background(), "c")
		if err != nil {
			t.Error(err)
		}
		stayer <- res
	}()
	time.Sleep(20 * time.Millisecond) // both queued
	<-stuck.release
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for stuck.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-leaver; !errors.Is(err, context.Canceled) {
		t.Fatalf("leaving caller: %v, want context.Canceled", err)
	}
	select {
	case <-stuck.release: // the call was not cancelled: it still waits to go through
	case <-time.After(5 * time.Second):
		t.Fatal("the batch's call ended with the caller that left")
	}
	if res := <-stayer; !res.Allowed || res.Remaining != 9 {
		t.Fatalf("staying caller: %+v, want allowed with 9 left", res)
	}
	if n := stuck.calls.Load(); n != 2 {
		t.Fatalf("%d script calls, want 2 (b and c in one)", n)
	}
}
