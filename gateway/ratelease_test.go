package gateway_test

import (
	"math"
	"regexp"
	"strconv"
	"testing"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
)

// remainingOf reads r= of the first policy in a RateLimit header.
func remainingOf(t *testing.T, r resp) int64 {
	t.Helper()
	m := regexp.MustCompile(`;r=(\d+);`).FindStringSubmatch(r.header.Get("RateLimit"))
	if m == nil {
		t.Fatalf("status %d, RateLimit header %q", r.status, r.header.Get("RateLimit"))
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestRateLeases: a busy token with a large limit is served mostly from leased units
// (1% of the limit by default), its RateLimit header still counting down one a
// request; a small limit, or RateLease negative, is checked in Redis every time.
func TestRateLeases(t *testing.T) {
	run := func(t *testing.T, lease float64, rate string, n int) (e *env, raw string, remaining []int64, last resp) {
		var store *cache.MarketStore
		e = start(t, func(d *gateway.Deps, c *gateway.Config) { withMarket(&store)(d, c); c.RateLease = lease })
		raw, _, _ = e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}, Rate: rate})
		for range n {
			last = e.do("GET", "/v1/markets", raw, nil)
			if last.status == 200 {
				remaining = append(remaining, remainingOf(t, last))
			}
		}
		return e, raw, remaining, last
	}
	countsDown := func(t *testing.T, remaining []int64, from int64) {
		t.Helper()
		for i, r := range remaining {
			if r != from-1-int64(i) {
				t.Fatalf("request %d: %d left, want %d (all: %v)", i+1, r, from-1-int64(i), remaining)
			}
		}
	}

	t.Run("large limit leases", func(t *testing.T) {
		e, _, remaining, _ := run(t, 0, "gcra:5000/d", 150)
		if len(remaining) != 150 {
			t.Fatalf("%d of 150 requests allowed", len(remaining))
		}
		countsDown(t, remaining, 5000)
		if got := metricstest.Counter(t, e.reg, "tickstash_ratelimit_leased_total"); got < 100 {
			t.Fatalf("%v of 150 requests served from leases, want most", got)
		}
	})
	t.Run("small limit is exact", func(t *testing.T) {
		e, _, remaining, last := run(t, 0, "gcra:60/d", 61)
		if len(remaining) != 60 || last.status != 429 {
			t.Fatalf("%d allowed, last status %d: want 60 then 429", len(remaining), last.status)
		}
		countsDown(t, remaining, 60)
		if got := metricstest.Counter(t, e.reg, "tickstash_ratelimit_leased_total"); got != 0 {
			t.Fatalf("%v requests served from leases under a limit of 60, want 0", got)
		}
	})
	t.Run("leasing off", func(t *testing.T) {
		e, _, remaining, _ := run(t, -1, "gcra:5000/d", 50)
		countsDown(t, remaining, 5000)
		if got := metricstest.Counter(t, e.reg, "tickstash_ratelimit_leased_total"); got != 0 {
			t.Fatalf("%v requests served from leases with RateLease -1, want 0", got)
		}
	})
}

func TestRateLeaseConfig(t *testing.T) {
	rdb := redistest.Client(t)
	for _, share := range []float64{0.2, 1, math.NaN()} {
		if _, err := gateway.New(gateway.Deps{Redis: rdb}, gateway.Config{RateLease: share}, nil, nil); err == nil {
			t.Errorf("RateLease %v accepted", share)
		}
	}
}
