package ttlcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

type profile struct {
	Name  string
	Score int
}

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time        { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Add(d time.Duration)   { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock             { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *fakeClock) cfg() func() time.Time { return c.Now }

func newTTLCache(t *testing.T, rdb redis.UniversalClient, cfg TTLCacheConfig) *TTLCache[profile] {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(t, rdb)
	}
	c, err := NewTTLCache[profile](rdb, "profiles", cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTTLCacheSingleFlight(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	c := newTTLCache(t, rdb, TTLCacheConfig{})
	var calls atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context, key string) (profile, error) {
		calls.Add(1)
		<-release
		return profile{Name: key, Score: 7}, nil
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.GetOrLoad(ctx, "ann", load)
			if err == nil && v != (profile{"ann", 7}) {
				err = fmt.Errorf("got %+v", v)
			}
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let every goroutine miss and queue on the load
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("loader called %d times for %d concurrent misses, want 1", got, n)
	}
	if v, err := c.Get(ctx, "ann"); err != nil || v.Score != 7 {
		t.Errorf("cached: %+v %v", v, err)
	}
	if _, err := c.GetOrLoad(ctx, "ann", load); err != nil || calls.Load() != 1 {
		t.Errorf("hit called the loader: %v, %d calls", err, calls.Load())
	}
}

func TestTTLCacheStaleNegativeJitter(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	clk := newFakeClock()
	c := newTTLCache(t, rdb, TTLCacheConfig{TTL: time.Minute, StaleTTL: time.Hour, NegativeTTL: 10 * time.Second, Jitter: -1, Now: clk.cfg()})
	var calls atomic.Int64
	refreshed := make(chan struct{}, 1)
	load := func(ctx context.Context, key string) (profile, error) {
		n := calls.Add(1)
		if key == "ghost" {
			return profile{}, fmt.Errorf("no such user: %w", cache.ErrNotFound)
		}
		if n > 1 {
			defer func() { refreshed <- struct{}{} }()
		}
		return profile{Name: key, Score: int(n)}, nil
	}
	if v, _ := c.GetOrLoad(ctx, "bo", load); v.Score != 1 {
		t.Fatalf("first load: %+v", v)
	}
	clk.Add(2 * time.Minute) // stale, within StaleTTL
	if _, err := c.Get(ctx, "bo"); !errors.Is(err, ErrMiss) {
		t.Errorf("Get of a stale value: %v, want ErrMiss", err)
	}
	if v, err := c.GetOrLoad(ctx, "bo", load); err != nil || v.Score != 1 {
		t.Fatalf("stale read: %+v %v, want the old value at once", v, err)
	}
	select {
	case <-refreshed:
	case <-time.After(5 * time.Second):
		t.Fatal("no background refresh")
	}
	testenv.WaitFor(t, "the refreshed value", func() bool { v, err := c.Get(ctx, "bo"); return err == nil && v.Score == 2 })

	// Negative caching: the loader is asked once within NegativeTTL.
	for i := 0; i < 3; i++ {
		if _, err := c.GetOrLoad(ctx, "ghost", load); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("ghost: %v", err)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d loader calls, want 3 (bo, bo refresh, ghost once)", calls.Load())
	}
	if ttl := rdb.PTTL(ctx, c.keys.CacheEntry("profiles", "ghost")).Val(); ttl > 10*time.Second || ttl < 9*time.Second {
		t.Errorf("negative entry TTL %v, want 10s", ttl)
	}
	clk.Add(11 * time.Second)
	_, _ = c.GetOrLoad(ctx, "ghost", load)
	if calls.Load() != 4 {
		t.Errorf("negative entry outlived NegativeTTL: %d calls", calls.Load())
	}

	// Jitter spreads TTLs over [TTL, TTL·(1+Jitter)].
	j := newTTLCache(t, rdb, TTLCacheConfig{TTL: 100 * time.Second, Jitter: 0.2})
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		key := fmt.Sprint("j", i)
		if err := j.Set(ctx, key, profile{}); err != nil {
			t.Fatal(err)
		}
		ttl := rdb.PTTL(ctx, j.keys.CacheEntry("profiles", key)).Val()
		if ttl < 99*time.Second || ttl > 120*time.Second {
			t.Fatalf("jittered TTL %v outside [100s, 120s]", ttl)
		}
		seen[ttl.Round(time.Second)] = true
	}
	if len(seen) < 4 {
		t.Errorf("20 jittered TTLs took only %d distinct values", len(seen))
	}
}

func TestTTLCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	c := newTTLCache(t, rdb, TTLCacheConfig{MaxTagKeys: 3})
	for i, tags := range [][]string{{"team:a"}, {"team:a", "vip"}, {"team:b"}} {
		if err := c.Set(ctx, fmt.Sprint("u", i), profile{Score: i}, tags...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.InvalidateTag(ctx, "team:a"); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]error{"u0": ErrMiss, "u1": ErrMiss, "u2": nil} {
		if _, err := c.Get(ctx, key); !errors.Is(err, want) && err != want {
			t.Errorf("%s after invalidating team:a: %v, want %v", key, err, want)
		}
	}
	if err := c.Invalidate(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "u2"); !errors.Is(err, ErrMiss) {
		t.Errorf("u2 after Invalidate: %v", err)
	}
	// A tag holds at most MaxTagKeys keys; keys pushed out are deleted, not left untracked.
	for i := 0; i < 5; i++ {
		if err := c.Set(ctx, fmt.Sprint("k", i), profile{Score: i}, "big"); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.ZCard(ctx, c.keys.CacheTag("profiles", "big")).Val(); n != 3 {
		t.Errorf("tag holds %d keys, want 3", n)
	}
	live := 0
	for i := 0; i < 5; i++ {
		if _, err := c.Get(ctx, fmt.Sprint("k", i)); err == nil {
			live++
		}
	}
	if live != 3 {
		t.Errorf("%d tagged values live, want the 3 the tag lists", live)
	}
	if ttl := rdb.PTTL(ctx, c.keys.CacheTag("profiles", "big")).Val(); ttl <= 0 {
		t.Errorf("tag set without TTL: %v", ttl)
	}
	if _, err := NewTTLCache[int](rdb, "Bad Name", TTLCacheConfig{}, prometheus.NewRegistry()); !errors.Is(err, cache.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
}

func BenchmarkTTLCacheHit(b *testing.B) {
	ctx := context.Background()
	rdb := redistest.Client(b)
	c, _ := NewTTLCache[profile](rdb, "bench", TTLCacheConfig{Prefix: redistest.Prefix(b, rdb)}, prometheus.NewRegistry())
	if err := c.Set(ctx, "k", profile{Name: "ann", Score: 1}); err != nil {
		b.Fatal(err)
	}
	load := func(context.Context, string) (profile, error) {
		b.Fatal("loader called on a hit")
		return profile{}, nil
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetOrLoad(ctx, "k", load); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestTTLCacheLoadRechecks is the race behind a flaky TestTTLCacheSingleFlight: a caller
// misses, another flight writes the value and ends, then the first caller's load starts.
// The load finds the fresh value and does not call the loader again.
func TestTTLCacheLoadRechecks(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	c := newTTLCache(t, rdb, TTLCacheConfig{})
	if err := c.Set(ctx, "bob", profile{Name: "bob", Score: 3}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	v, err := c.load(ctx, "bob", func(context.Context, string) (profile, error) {
		calls.Add(1)
		return profile{Name: "bob", Score: 4}, nil
	}, nil)
	if err != nil || v.Score != 3 || calls.Load() != 0 {
		t.Errorf("load after the value was written: %+v %v, %d loader calls; want the cached value and none", v, err, calls.Load())
	}
}
