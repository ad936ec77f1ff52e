package main

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// TestRunPublishesSignals runs the whole pipeline on embedded servers with a fast RSI
// strategy: synthetic trades → 1s candles → analysis jobs → rules → JetStream, and reads
// the signals back with `tickstash signals tail`.
func TestRunPublishesSignals(t *testing.T) {
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	strategies := filepath.Join(t.TempDir(), "strategies.yaml")
	if err := os.WriteFile(strategies, []byte(`strategies:
  - name: fast-rsi
    intervals: [1s]
    rules:
      - type: rsi
        period: 2
        lower: 30
        upper: 70
`), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, stop := started(t, "run", "--admin-addr", "127.0.0.1:0", "--intervals", "1s", "--synthetic-rate", "400",
		"--grace", "100ms", "--flush-interval", "50ms", "--indicators", "rsi:2", "--strategies", strategies)
	natsURL := find(t, stderr, `NATS   (nats://\S+)  \(embedded`)
	find(t, stderr, `msg="(signals started)"`) // the stream exists from here on

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	out, tailErr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"signals", "tail", "--nats-url", natsURL, "--from", "all", "--strategy", "fast-rsi"},
			strings.NewReader(""), out, tailErr)
	}()
	var sig market.Signal
	for {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			if err := json.Unmarshal([]byte(line), &sig); err != nil {
				t.Fatalf("tail printed %q: %v", line, err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no signal within 25s; run's stderr:\n%s", stderr)
		}
		select {
		case code := <-done:
			t.Fatalf("signals tail exited %d before printing a signal: %s", code, tailErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("signals tail exited %d", code)
	}
	if err := sig.Validate(); err != nil || sig.Strategy != "fast-rsi" || sig.Interval != market.Interval1s || sig.Exchange != market.Synthetic {
		t.Errorf("signal %+v: %v", sig, err)
	}
	// Opposite signals close paper positions: the strategy shows on the return board.
	redisURL := find(t, stderr, `Redis  (redis://\S+)  \(embedded`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var lb bytes.Buffer
		code := Main(context.Background(), []string{"leaderboard", "top", "strategy.return", "--redis-url", redisURL},
			strings.NewReader(""), &lb, &bytes.Buffer{})
		if code == 0 && strings.Contains(lb.String(), "fast-rsi") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fast-rsi not on the strategy.return board within 30s (exit %d):\n%s", code, lb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, stderr)
	}
}

func TestSignalsCommands(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"signals"}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix}
	if code, _, errs := run(append([]string{"entitle"}, append(common, "--user", "alice", "--strategies", "rsi-reversal", "--symbols", "btc-usdt")...)...); code != 0 {
		t.Fatalf("entitle: exit %d: %s", code, errs)
	}
	code, out, _ := run(append([]string{"entitle"}, append(common, "--list")...)...)
	if code != 0 || !strings.Contains(out, `"user":"alice"`) || !strings.Contains(out, `"BTC-USDT"`) {
		t.Errorf("entitle --list: exit %d, %s", code, out)
	}
	code, out, _ = run(append([]string{"permissions"}, common...)...)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "rsi-reversal") {
		t.Errorf("permissions: exit %d:\n%s", code, out)
	}
	for _, bad := range [][]string{
		append([]string{"entitle"}, common...), // no user
		{"tail", "--from", "yesterday"},
		{"--strategies", filepath.Join(t.TempDir(), "none.yaml")},
		{"bogus"},
	} {
		if code, _, errs := run(bad...); code == 0 {
			t.Errorf("signals %v: exit 0 (%s)", bad, errs)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("strategies:\n  - name: x\n    intervals: [1m]\n    rules:\n      - type: rsi\n        lower: 80\n        upper: 70\n"), 0o644)
	if code, _, errs := run("--strategies", bad, "--redis-url", redistest.URL()); code == 0 || !strings.Contains(errs, "bad.yaml:") {
		t.Errorf("a bad strategy file: exit %d, %s; want the file and line", code, errs)
	}
}

// TestSignalsEntitleRequiresLists: an entitlement without --strategies or --symbols would
// allow nothing, so it is refused with the fix, and nothing is stored.
func TestSignalsEntitleRequiresLists(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		full := append([]string{"signals", "entitle", "--redis-url", redistest.URL(), "--key-prefix", prefix}, args...)
		code := Main(context.Background(), full, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "bob", "--strategies", "trend"}, "--symbols is required"},
		{[]string{"--user", "bob", "--symbols", "BTC-USDT"}, "--strategies is required"},
		{[]string{"--user", "bob", "--strategies", "trend", "--symbols", " , "}, "--symbols is required"},
	} {
		code, _, errs := run(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) || !strings.Contains(errs, "'*' for all") {
			t.Errorf("entitle %v: exit %d, %q; want exit 2 saying %q and how to grant all", c.args, code, errs, c.want)
		}
	}
	if code, out, _ := run("--list"); code != 0 || out != "" {
		t.Errorf("after refused entitlements, --list: exit %d, %q; want nothing stored", code, out)
	}
	if code, _, errs := run("--user", "bob", "--strategies", "*", "--symbols", "*"); code != 0 {
		t.Fatalf("entitle to all: exit %d: %s", code, errs)
	}
	if code, out, _ := run("--list"); code != 0 || !strings.Contains(out, `"symbols":["*"]`) {
		t.Errorf("--list: exit %d, %q", code, out)
	}
}

// TestSignalsRefusesStrategyOutsideIndicators: a rule reading a column the analyzer does
// not compute (Bollinger Bands with another deviation) stops the signals role at start,
// naming the file, line, strategy, rule, column and the indicator to add; with that
// indicator added to --indicators the same file passes the check.
func TestSignalsRefusesStrategyOutsideIndicators(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wide.yaml")
	_ = os.WriteFile(file, []byte("strategies:\n  - name: wide-bands\n    intervals: [1m]\n    rules:\n      - type: rsi\n      - type: bbands\n        dev: 2.5\n"), 0o644)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"signals", "--strategies", file, "--redis-url", redistest.URL(),
		"--nats-url", testenv.NATSURL()}, strings.NewReader(""), &out, &errb)
	for _, want := range []string{"wide.yaml:6:", `strategy "wide-bands"`, "bbands_upper_20_2.5", "add bbands:20,2.5 to the analyzer's --indicators"} {
		if code == 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("exit %d, stderr %q; want it to say %q", code, errb.String(), want)
		}
	}
	// `signals check` says the same without starting anything, and passes once the
	// indicator is added.
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"signals", "check", "--strategies", file}, strings.NewReader(""), &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), "wide.yaml:6:") || !strings.Contains(errb.String(), "add bbands:20,2.5") {
		t.Errorf("signals check: exit %d, %q", code, errb.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"signals", "check", "--strategies", file, "--indicators", "rsi:14 bbands:20,2.5"},
		strings.NewReader(""), &out, &errb); code != 0 || out.String() != "ok  wide-bands (2 rules)\n" {
		t.Errorf("signals check with the indicator: exit %d, %q", code, out.String())
	}
	// The check itself: the default indicators lack the column, the default indicators
	// plus bbands:20,2.5 have it.
	c := signalsConfig{strategies: file, maxAge: time.Hour, maxBytes: 1, dupWindow: time.Minute, ackWait: time.Second}
	c.contract = &analysisContract{indicators: strings.Join(analysis.DefaultIndicators, " ")}
	if err := c.check(); err == nil {
		t.Error("check passed a rule reading a column the analyzer does not compute")
	}
	c.contract.indicators += " bbands:20,2.5"
	if err := c.check(); err != nil {
		t.Errorf("check with the indicator added: %v", err)
	}
	// The built-in strategies are fed by the built-in indicators.
	c.strategies = ""
	c.contract.indicators = strings.Join(analysis.DefaultIndicators, " ")
	if err := c.check(); err != nil || len(c.loaded) != 3 {
		t.Errorf("built-in strategies against the default indicators: %d loaded, %v", len(c.loaded), err)
	}
	// Of the built-in strategies, those the indicators feed run; none fed is an error.
	c.contract.indicators = "sma:2 rsi:14"
	if err := c.check(); err != nil || len(c.loaded) != 1 || c.loaded[0].Name != "rsi-reversal" || len(c.skipped) != 2 {
		t.Errorf("built-in strategies with rsi:14 only: %v loaded, %v skipped, %v", c.loaded, c.skipped, err)
	}
	c.contract.indicators, c.skipped = "sma:2 obv", nil
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "none of the built-in strategies") || !strings.Contains(err.Error(), "add rsi:14") {
		t.Errorf("built-in strategies with no column they read: %v", err)
	}
}

// TestRuleIndicatorsComputeTheirColumns: for every kind of rule, the indicators the fix
// message suggests compute exactly the columns the rule reads (the analysis spec syntax
// and column names agree with signals').
func TestRuleIndicatorsComputeTheirColumns(t *testing.T) {
	strategies, err := signals.ParseStrategies("all.yaml", []byte(`strategies:
  - name: all
    intervals: [1m]
    rules:
      - {type: rsi, period: 7}
      - {type: macd, fast: 5, slow: 35, signal: 5}
      - {type: bbands, period: 10, dev: 1.5}
      - {type: bbands}
      - {type: sma_cross, fast: 3, slow: 8}
      - {type: sma_cross, ma: ema, fast: 4, slow: 9}
      - {type: sma_cross, ma: wma}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range strategies[0].Rules {
		var cols []string
		for _, ind := range r.Indicators() {
			spec, err := indicator.ParseSpec(ind)
			if err != nil {
				t.Fatalf("rule %s suggests %q: %v", r.Name(), ind, err)
			}
			cols = append(cols, spec.Columns()...)
		}
		if err := signals.CheckColumns([]signals.Strategy{{Name: "x", Rules: []signals.Rule{r}}}, cols); err != nil {
			t.Errorf("rule %s: its suggested indicators %v compute %v: %v", r.Name(), r.Indicators(), cols, err)
		}
	}
}
