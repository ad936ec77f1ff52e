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

// TestQueue runs a short queue benchmark and checks the report and the clean-up. With
// TICKSTASH_BENCH_QUEUE=1 it runs the full benchmark and logs the Markdown report:
//
//	TICKSTASH_BENCH_QUEUE=1 go test -run TestQueue -v ./cmd/tickstash-bench/internal/bench/
func TestQueue(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	// asynq's recovery takes a minute or more: the short run gives it 5s, so its case
	// is reported as not recovered; tickstash's, with its defaults, must recover.
	cfg := bench.QueueBenchConfig{Jobs: 500, Rounds: 2, RecoveryWait: 5 * time.Second, RedisURL: redistest.URL(), Prefix: prefix}
	if os.Getenv("TICKSTASH_BENCH_QUEUE") == "1" {
		cfg = bench.QueueBenchConfig{RedisURL: redistest.URL(), Prefix: prefix}
	}
	var progress strings.Builder
	rep, err := bench.Queue(context.Background(), rdb, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\n%s", progress.String(), rep.Markdown())
	if len(rep.Rounds) != cfg.Rounds && cfg.Rounds != 0 {
		t.Fatalf("report %+v: want %d rounds", rep, cfg.Rounds)
	}
	for i, rd := range rep.Rounds {
		if rd.Ours.Jobs != cfg.Jobs || rd.Ours.PerSecond <= 0 || rd.Asynq.Jobs != cfg.Jobs || rd.Asynq.PerSecond <= 0 || rd.VsAsynq <= 0 {
			t.Errorf("round %d: %+v", i+1, rd)
		}
		if rd.AsynqFirst != (i%2 == 1) {
			t.Errorf("round %d: asynq first = %v: the rounds must alternate", i+1, rd.AsynqFirst)
		}
	}
	if len(rep.Recovery) != 2 || !rep.Recovery[0].Recovered {
		t.Errorf("crash recovery %+v: want both systems, tickstash's job done elsewhere", rep.Recovery)
	}
	for _, want := range []string{"**median** (min–max)", "Crash recovery", "| " + rep.Recovery[0].String() + " |"} {
		if !strings.Contains(rep.Markdown(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "asynq:{" + prefix + "*"} {
		if keys := redistest.Keys(t, rdb, pattern); len(keys) != 0 {
			t.Errorf("keys left matching %s: %v", pattern, keys)
		}
	}
	queues, _ := rdb.SMembers(ctx, "asynq:queues").Result()
	for _, q := range queues {
		if strings.HasPrefix(q, prefix) {
			t.Errorf("asynq still lists the benchmark queue %s", q)
		}
	}
}
