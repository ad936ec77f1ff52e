package feeds

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParse(t *testing.T) {
	deps := Deps{Registerer: prometheus.NewRegistry(), RecordDir: t.TempDir()}
	for spec, name := range map[string]string{
		"binance:BTCUSDT,ETHUSDT":    "binance",
		"binanceus:BTCUSD":           "binanceus",
		"coinbase:BTC-USD":           "coinbase",
		"coinbase-exchange:BTC-USD":  "coinbase",
		"kraken:BTC/USD":             "kraken",
		"kraken-v1:XBT/USD":          "kraken",
		"replay:a.jsonl,b.jsonl.zst": "replay",
	} {
		src, err := Parse(spec, deps)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if src.Name() != name {
			t.Errorf("%s: name %q, want %q", spec, src.Name(), name)
		}
	}
	if _, err := Parse("synthetic", deps); !errors.Is(err, ErrSynthetic) {
		t.Errorf("synthetic: err = %v", err)
	}
	for _, bad := range []string{"", "binance", "binance:", "ftx:BTC-USD", "replay:"} {
		if _, err := Parse(bad, deps); err == nil || !strings.HasPrefix(err.Error(), "feeds: ") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
