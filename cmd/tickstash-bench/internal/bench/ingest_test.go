package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/internal/redistest"
)

// TestIngestReportsAndCleansUp runs a small ingest benchmark on the real Redis: the
// report names both rates and their ratio, and no key of the run is left.
func TestIngestReportsAndCleansUp(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	cfg := IngestConfig{Trades: 5000, Symbols: 4, Prefix: prefix, RedisAddr: redistest.Addr(), Rounds: 2}
	rep, err := Ingest(context.Background(), rdb, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TradesPerS <= 0 || rep.Candles == 0 || len(rep.TradesRounds) != 2 || (cfg.RedisAddr != "" && len(rep.Ratios()) != 2) {
		t.Errorf("report %+v", rep)
	}
	if cfg.RedisAddr != "" && (rep.RawXADDPerS <= 0 || !strings.Contains(rep.Markdown(), "Ratio: **")) {
		t.Errorf("no reference in the report:\n%s", rep.Markdown())
	}
	if keys := redistest.Keys(t, rdb, prefix+"*"); len(keys) != 0 {
		t.Errorf("%d keys left behind, e.g. %s", len(keys), keys[0])
	}
}
