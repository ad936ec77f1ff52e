package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
	"github.com/tickstash/tickstash/internal/redistest"
)

// TestQueue runs a short queue benchmark and checks the report and the clean-up. With
// TICKSTASH_BENCH_QUEUE=1 it runs the full benchmark and logs the Markdown report:
//
//	TICKSTASH_BENCH_QUEUE=1 go test -run TestQueue -v ./cmd/tickstash-bench/internal/bench/
func TestQueue(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	cfg := bench.QueueBenchConfig{Jobs: 500, Prefix: prefix}
	if os.Getenv("TICKSTASH_BENCH_QUEUE") == "1" {
		cfg = bench.QueueBenchConfig{Prefix: prefix}
	}
	var progress strings.Builder
	rep, err := bench.Queue(context.Background(), rdb, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\n%s", progress.String(), rep.Markdown())
	if len(rep.Cases) != 2 || rep.VsAsynq <= 0 {
		t.Fatalf("report %+v: want two cases and a ratio", rep)
	}
	for _, c := range rep.Cases {
		if c.Jobs != cfg.Jobs || c.PerSecond <= 0 {
			t.Errorf("case %+v", c)
		}
	}
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "asynq:{" + prefix + "}*"} {
		if keys := redistest.Keys(t, rdb, pattern); len(keys) != 0 {
			t.Errorf("keys left matching %s: %v", pattern, keys)
		}
	}
	if ok, _ := rdb.SIsMember(ctx, "asynq:queues", prefix).Result(); ok {
		t.Error("asynq still lists the benchmark queue")
	}
}
