package ratelimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

// Run with: go test -run '^$' -bench . -benchtime 2s ./ratelimit/
func BenchmarkAllow(b *testing.B) {
	rdb := redistest.Client(b)
	for _, tc := range []struct {
		name     string
		policies []ratelimit.Policy
		lease    int64
	}{
		{"gcra", []ratelimit.Policy{{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1 << 30, Window: time.Second}}, 0},
		{"sliding_window", []ratelimit.Policy{{Name: "p", Algorithm: ratelimit.SlidingWindow, Limit: 1 << 30, Window: time.Second}}, 0},
		{"two_policies", []ratelimit.Policy{
			{Name: "burst", Algorithm: ratelimit.GCRA, Limit: 1 << 30, Window: time.Second},
			{Name: "daily", Algorithm: ratelimit.FixedWindow, Limit: 1 << 40, Window: 24 * time.Hour},
		}, 0},
		// The gateway's setting for a busy token: 1% of the limit leased.
		{"gcra_leased", []ratelimit.Policy{{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1 << 30, Window: time.Second}}, 1 << 30 / 100},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lim, _ := newLimiter(b, rdb, ratelimit.Config{Policies: tc.policies, Lease: tc.lease})
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := "user-" + strconv.FormatInt(n.Add(1), 10)
				for pb.Next() {
					if _, err := lim.Allow(context.Background(), id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAllowBlocked measures a blocked caller answered from the local cache.
func BenchmarkAllowBlocked(b *testing.B) {
	rdb := redistest.Client(b)
	lim, _ := newLimiter(b, rdb, ratelimit.Config{Policies: []ratelimit.Policy{{Name: "p", Algorithm: ratelimit.FixedWindow, Limit: 1, Window: time.Hour}}})
	ctx := context.Background()
	for i := range 64 {
		id := "user-" + strconv.Itoa(i)
		_, _ = lim.Allow(ctx, id)
		if res, _ := lim.Allow(ctx, id); res.Allowed {
			b.Fatal("not blocked")
		}
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := "user-" + strconv.FormatInt(n.Add(1)%64, 10)
		for pb.Next() {
			if res, _ := lim.Allow(ctx, id); !res.Cached {
				b.Error("not served from the local cache")
				return
			}
		}
	})
}
