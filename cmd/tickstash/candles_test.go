package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runCandles(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"candles"}, args...), strings.NewReader(input), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCandlesCommand(t *testing.T) {
	input := strings.Join([]string{
		`{"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"1","price":"95000.01","qty":"0.01","side":"buy","time":"2026-01-01T00:00:01.123456Z"}`,
		`{"type":"trade","exchange":"coinbase","symbol":"ETH-USD","id":"7","price":"3500","qty":"2","side":"sell","time":"2026-01-01T00:00:30Z"}`,
		`{"type":"quote","exchange":"coinbase","symbol":"BTC-USD","bid":"1","bid_qty":"1","ask":"2","ask_qty":"1","time":"2026-01-01T00:00:31Z"}`,
		`{"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"2","price":"94999.99","qty":"0.02","side":"sell","time":"2026-01-01T00:00:59.999999Z"}`,
		``,
		`{"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"3","price":"95010","qty":"0.5","side":"buy","time":"2026-01-01T00:03:00Z"}`,
	}, "\n")
	code, out, errs := runCandles(t, input, "--interval", "1m")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	want := []string{
		`{"type":"candle","exchange":"coinbase","symbol":"BTC-USD","interval":"1m","open_time":"2026-01-01T00:00:00Z","close_time":"2026-01-01T00:01:00Z","open":"95000.01","high":"95000.01","low":"94999.99","close":"94999.99","volume":"0.03","quote_volume":"2849.9999","trades":2,"vwap":"94999.996666666666666667","closed":true}`,
		`{"type":"candle","exchange":"coinbase","symbol":"BTC-USD","interval":"1m","open_time":"2026-01-01T00:03:00Z","close_time":"2026-01-01T00:04:00Z","open":"95010","high":"95010","low":"95010","close":"95010","volume":"0.5","quote_volume":"47505","trades":1,"vwap":"95010","closed":true}`,
		`{"type":"candle","exchange":"coinbase","symbol":"ETH-USD","interval":"1m","open_time":"2026-01-01T00:00:00Z","close_time":"2026-01-01T00:01:00Z","open":"3500","high":"3500","low":"3500","close":"3500","volume":"2","quote_volume":"7000","trades":1,"vwap":"3500","closed":true}`,
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(out), "\n")); diff != "" {
		t.Errorf("candles (-want +got):\n%s", diff)
	}

	code, out, _ = runCandles(t, input, "--interval", "1m", "--empty", "flat")
	if n := strings.Count(out, `"symbol":"BTC-USD"`); code != 0 || n != 4 {
		t.Errorf("flat: exit %d, %d BTC-USD candles, want 4 (00:00, flat 00:01, flat 00:02, 00:03):\n%s", code, n, out)
	}
}

func TestCandlesReportsMalformedLines(t *testing.T) {
	input := strings.Join([]string{
		`{"exchange":"coinbase","symbol":"BTC-USD","id":"1","price":"1","qty":"1","side":"buy","time":"2026-01-01T00:00:01Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","id":"2","price":"-5","qty":"1","side":"buy","time":"2026-01-01T00:00:02Z"}`,
		`not json at all`,
		`{"exchange":"coinbase","symbol":"","id":"3","price":"1","qty":"1","time":"2026-01-01T00:00:03Z"}`,
		`{"exchange":"coinbase","symbol":"BTC-USD","id":"4","price":"2","qty":"1","side":"buy","time":"2026-01-01T00:00:04Z"}`,
	}, "\n")
	code, out, errs := runCandles(t, input)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"line 2: price must be positive", "line 3: ", "line 4: empty symbol", "3 malformed line(s) skipped, 2 trade(s) aggregated"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, `"trades":2`) || !strings.Contains(out, `"high":"2"`) {
		t.Errorf("the good lines were not aggregated: %s", out)
	}
}

func TestCandlesFromFileAndLateTrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trades.jsonl")
	input := `{"exchange":"kraken","symbol":"ETH-USD","id":"1","price":"10","qty":"1","side":"buy","time":"2026-01-01T00:01:00Z"}
{"exchange":"kraken","symbol":"ETH-USD","id":"2","price":"11","qty":"1","side":"buy","time":"2026-01-01T00:02:00Z"}
{"exchange":"kraken","symbol":"ETH-USD","id":"3","price":"9","qty":"1","side":"buy","time":"2026-01-01T00:00:30Z"}
{"exchange":"kraken","symbol":"ETH-USD","id":"2","price":"11","qty":"1","side":"buy","time":"2026-01-01T00:02:00Z"}
`
	if err := os.WriteFile(path, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCandles(t, "", path)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(errs, "1 late trade(s) dropped") ||
		!strings.Contains(errs, "1 repeated trade id(s) skipped") || strings.Contains(out, `"trades":2`) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if code, _, errs := runCandles(t, "", filepath.Join(t.TempDir(), "missing.jsonl")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, %s", code, errs)
	}
}
