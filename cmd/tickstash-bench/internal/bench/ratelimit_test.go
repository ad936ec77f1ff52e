package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
	"github.com/tickstash/tickstash/internal/redistest"
)

// TestRateLimit runs a short benchmark and checks the report's shape and the clean-up.
// With TICKSTASH_BENCH_RATELIMIT=1 it runs the full benchmark (64 goroutines, 3s per
// case) and logs the Markdown report:
//
//	TICKSTASH_BENCH_RATELIMIT=1 go test -run TestRateLimit -v ./cmd/tickstash-bench/internal/bench/
func TestRateLimit(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	cfg := bench.RateLimitConfig{Duration: 200 * time.Millisecond, Goroutines: 8, Identifiers: 50, Prefix: prefix}
	if os.Getenv("TICKSTASH_BENCH_RATELIMIT") == "1" {
		cfg = bench.RateLimitConfig{Prefix: prefix}
	}
	var progress strings.Builder
	rep, err := bench.RateLimit(context.Background(), rdb, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\n%s", progress.String(), rep.Markdown())
	if len(rep.Cases) != 5 {
		t.Fatalf("%d cases, want 5", len(rep.Cases))
	}
	for _, c := range rep.Cases {
		if c.Checks == 0 || c.PerSecond <= 0 || c.P50 <= 0 || c.P99 < c.P50 || c.Errors != 0 {
			t.Errorf("case %+v: want checks, latencies and no errors", c)
		}
	}
	if rep.GCRAVsRedisRate <= 0 || rep.GCRAVsBareEvalSha <= 0 || rep.LocalCacheSpeedup <= 1 {
		t.Errorf("ratios %+v", rep)
	}
	if md := rep.Markdown(); !strings.Contains(md, "| tickstash GCRA |") || !strings.Contains(md, "local cache ÷ tickstash GCRA ≥ 10") {
		t.Errorf("Markdown:\n%s", md)
	}
	for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
		if keys := redistest.Keys(t, rdb, pattern); len(keys) != 0 {
			t.Errorf("%d keys %s left behind", len(keys), pattern)
		}
	}
}
