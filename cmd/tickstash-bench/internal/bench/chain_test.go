package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

// TestChain runs a short trade → signal chain through the real roles on the test Redis
// and NATS and checks that every candle's signal came through and the report's shape.
func TestChain(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rdb := redistest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := bench.Chain(ctx, rdb, nc, bench.ChainConfig{Samples: 8, Rounds: 2}, &progress)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s\n%s", progress.String(), rep.Markdown())
	if len(rep.P50) != 2 || len(rep.P99) != 2 {
		t.Fatalf("report %+v: want 2 rounds", rep)
	}
	for r := range rep.P50 {
		if rep.P50[r] <= 0 || rep.P99[r] < rep.P50[r] {
			t.Errorf("round %d: p50 %v p99 %v", r, rep.P50[r], rep.P99[r])
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "| trade → signal delivered |") {
		t.Errorf("Markdown:\n%s", md)
	}
}
