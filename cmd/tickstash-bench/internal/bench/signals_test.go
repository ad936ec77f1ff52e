package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
	"github.com/tickstash/tickstash/internal/testenv"
)

// TestSignals runs a short signals benchmark against the test NATS (testenv.NATSURL)
// and checks the report's shape. With
// TICKSTASH_BENCH_SIGNALS=1 it runs the full benchmark and logs the Markdown report:
//
//	TICKSTASH_BENCH_SIGNALS=1 go test -count=1 -run TestSignals -v ./cmd/tickstash-bench/internal/bench/
func TestSignals(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := bench.SignalsConfig{Signals: 2000, Batch: 100, Publishers: 2, RateSignals: 200, Rounds: 2}
	if os.Getenv("TICKSTASH_BENCH_SIGNALS") == "1" {
		cfg = bench.SignalsConfig{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := bench.Signals(ctx, nc, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\n%s", progress.String(), rep.Markdown())
	if len(rep.Cases) != 2 || rep.Ratio <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Cases {
		if c.PerSecond <= 0 || c.P50 <= 0 || c.P99 < c.P50 || c.Bytes < 200 {
			t.Errorf("case %+v", c)
		}
	}
	if rep.Rate == nil || len(rep.Rate.Cases) != 2 {
		t.Fatalf("fixed-rate report %+v", rep.Rate)
	}
	for _, c := range rep.Rate.Cases {
		if len(c.P50) != rep.Rate.Rounds || len(c.P99) != rep.Rate.Rounds || len(c.Achieved) != rep.Rate.Rounds {
			t.Fatalf("fixed-rate case %+v: want %d rounds", c, rep.Rate.Rounds)
		}
		for r := range c.P50 {
			if c.P50[r] <= 0 || c.P99[r] < c.P50[r] || c.Achieved[r] <= 0 || c.Achieved[r] > 1.5*float64(rep.Rate.Rate) {
				t.Errorf("fixed-rate case %s round %d: p50 %v p99 %v sent %.0f/s", c.Name, r, c.P50[r], c.P99[r], c.Achieved[r])
			}
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "signals ÷ raw JetStream ≥ 0.5") || !strings.Contains(md, "p99 < 2ms at 1000/s") {
		t.Errorf("Markdown:\n%s", md)
	}
}
