package signals

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tickstash/tickstash/market"
)

func TestLoadStrategies(t *testing.T) {
	got, err := LoadStrategies("testdata/strategies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Strategy{
		{Name: "rsi-reversal", Exchanges: []market.Exchange{"binance"}, Symbols: []market.Symbol{"BTC-USDT", "ETH-USDT"},
			Intervals: []market.Interval{market.Interval1m, market.Interval5m}, File: "testdata/strategies.yaml", Line: 2,
			Rules: []Rule{{Kind: RSICross, Period: 14, Lower: 30, Upper: 70, Weight: 1, Line: 7}}},
		{Name: "trend", Intervals: []market.Interval{market.Interval1h}, File: "testdata/strategies.yaml", Line: 11, Rules: []Rule{
			{Kind: MACDCross, Fast: 12, Slow: 26, Signal: 9, Weight: 1, Line: 14},
			{Kind: MACross, Fast: 20, Slow: 50, MA: "ema", Weight: 2, Line: 15},
			{Kind: BBandsBreak, Period: 20, Dev: 2.5, Weight: 1, Line: 20},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("strategies (-want +got):\n%s", diff)
	}
	cols := got[1].Columns()
	wantCols := []string{"bbands_lower_20_2.5", "bbands_upper_20_2.5", "ema_20", "ema_50", "macd_12_26_9", "macd_signal_12_26_9"}
	if !cmp.Equal(cols, wantCols) {
		t.Errorf("columns = %v, want %v", cols, wantCols)
	}
	// JSON is YAML too.
	js := `{"strategies": [{"name": "j", "intervals": ["1m"], "rules": [{"type": "rsi"}]}]}`
	if s, err := ParseStrategies("s.json", []byte(js)); err != nil || s[0].Rules[0].Columns()[0] != "rsi_14" {
		t.Errorf("JSON: %v, %v", s, err)
	}
}

func TestParseStrategiesErrors(t *testing.T) {
	head := "strategies:\n  - name: s\n    intervals: [1m]\n    rules:\n"
	tests := []struct {
		name, file string
		line       int
		reason     string
	}{
		{"syntax", "strategies: [\n  {name: x\n", 1, "did not find"},
		{"empty", "", 0, "empty file"},
		{"top-level key", "strategy: []\n", 1, `unknown key "strategy"`},
		{"no list", "strategies: {}\n", 1, "non-empty list"},
		{"bad name", "strategies:\n  - name: Bad.Name\n", 2, "name \"Bad.Name\""},
		{"bad interval", "strategies:\n  - name: s\n    intervals: [1m, 2m]\n", 3, `unknown interval "2m"`},
		{"bad symbol", "strategies:\n  - name: s\n    symbols: [BTCUSDT]\n", 3, "BASE-QUOTE"},
		{"unknown strategy key", "strategies:\n  - name: s\n    interval: 1m\n", 3, `unknown key "interval"`},
		{"no intervals", "strategies:\n  - name: s\n    rules: [{type: rsi}]\n", 2, "no intervals"},
		{"no rules", "strategies:\n  - name: s\n    intervals: [1m]\n", 2, "non-empty list of rules"},
		{"unknown rule", head + "      - type: vwap\n", 5, `type "vwap"`},
		{"rule key of another type", head + "      - type: rsi\n        fast: 3\n", 6, `unknown key "fast"`},
		{"thresholds", head + "      - type: rsi\n        lower: 80\n        upper: 70\n", 6, "lower (80) < upper (70)"},
		{"period", head + "      - type: rsi\n        period: 1\n", 6, "from 2 to"},
		{"not a number", head + "      - type: bbands\n        dev: wide\n", 6, "not a finite number"},
		{"fast not below slow", head + "      - type: macd\n        fast: 30\n", 6, "fast period 30 must be below slow period 26"},
		{"weight", head + "      - type: macd\n        weight: -1\n", 6, "weight -1"},
		{"repeated key", head + "      - type: rsi\n        period: 3\n        period: 4\n", 7, "repeated"},
		{"repeated strategy", head + "      - type: rsi\n  - name: s\n    intervals: [1m]\n    rules: [{type: rsi}]\n", 6, "already defined at line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStrategies("x.yaml", []byte(tc.file))
			var se *StrategyError
			if !errors.As(err, &se) || !errors.Is(err, ErrStrategyFile) {
				t.Fatalf("error %v, want a *StrategyError", err)
			}
			if se.Line != tc.line || !strings.Contains(se.Reason, tc.reason) || se.File != "x.yaml" {
				t.Errorf("error %q (line %d), want line %d and %q", err, se.Line, tc.line, tc.reason)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), "signals: x.yaml:") {
				t.Errorf("error %q does not start with the file and line", err)
			}
		})
	}
	if _, err := LoadStrategies("testdata/missing.yaml"); !errors.Is(err, ErrStrategyFile) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseStrategies checks that any input either parses into strategies that hold
// the parser's promises or fails with a *StrategyError.
func FuzzParseStrategies(f *testing.F) {
	f.Add("strategies:\n  - name: s\n    intervals: [1m]\n    rules:\n      - type: rsi\n")
	f.Add(`{"strategies": [{"name": "j", "intervals": ["1m", "1h"], "rules": [{"type": "macd", "fast": 3}]}]}`)
	f.Add("strategies:\n  - name: a\n    symbols: [btc-usd]\n    intervals: 5m\n    rules: [{type: bbands, dev: 1.5}, {type: sma_cross, ma: wma}]\n")
	f.Add("strategies: [\n")
	f.Add("- - - &a *a\n")
	f.Fuzz(func(t *testing.T, data string) {
		got, err := ParseStrategies("f.yaml", []byte(data))
		if err != nil {
			var se *StrategyError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *StrategyError", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no strategies and no error")
		}
		for _, s := range got {
			if market.ValidateStrategyName(s.Name) != nil || len(s.Intervals) == 0 || len(s.Rules) == 0 {
				t.Fatalf("invalid strategy parsed: %+v", s)
			}
			for _, r := range s.Rules {
				if r.Weight <= 0 || len(r.Columns()) == 0 {
					t.Fatalf("invalid rule parsed: %+v", r)
				}
			}
		}
	})
}
