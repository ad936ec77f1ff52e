package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

// TestGatewayBenchReport prints a full report when TICKSTASH_BENCH_GATEWAY is set.
func TestGatewayBenchReport(t *testing.T) {
	if os.Getenv("TICKSTASH_BENCH_GATEWAY") == "" {
		t.Skip("set TICKSTASH_BENCH_GATEWAY=1 to run (or use tickstash bench gateway)")
	}
	rep, err := Gateway(context.Background(), redistest.Client(t), GatewayConfig{Duration: 3 * time.Second}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Markdown())
}
