package indicator

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in       string
		canon    string
		columns  []string
		lookback int
	}{
		{"sma:20", "sma:20", []string{"sma_20"}, 19},
		{" SMA : 20 ", "sma:20", []string{"sma_20"}, 19},
		{"sma", "sma:20", []string{"sma_20"}, 19},
		{"ema:9", "ema:9", []string{"ema_9"}, 8},
		{"wma:5", "wma:5", []string{"wma_5"}, 4},
		{"rsi:14", "rsi:14", []string{"rsi_14"}, 14},
		{"rsi", "rsi:14", []string{"rsi_14"}, 14},
		{"macd", "macd:12,26,9", []string{"macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9"}, 33},
		{"macd:12,26,9", "macd:12,26,9", []string{"macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9"}, 33},
		{"macd:5,35", "macd:5,35,9", []string{"macd_5_35_9", "macd_signal_5_35_9", "macd_hist_5_35_9"}, 42},
		{"bbands:20,2", "bbands:20,2", []string{"bbands_upper_20_2", "bbands_middle_20_2", "bbands_lower_20_2"}, 19},
		{"bbands", "bbands:20,2", []string{"bbands_upper_20_2", "bbands_middle_20_2", "bbands_lower_20_2"}, 19},
		{"bbands:10,1.5,2.5", "bbands:10,1.5,2.5", []string{"bbands_upper_10_1.5_2.5", "bbands_middle_10_1.5_2.5", "bbands_lower_10_1.5_2.5"}, 9},
		{"bbands:10,2,2", "bbands:10,2", []string{"bbands_upper_10_2", "bbands_middle_10_2", "bbands_lower_10_2"}, 9},
		{"atr:14", "atr:14", []string{"atr_14"}, 14},
		{"atr:1", "atr:1", []string{"atr_1"}, 1},
		{"stoch:14,3,3", "stoch:14,3,3", []string{"stoch_k_14_3_3", "stoch_d_14_3_3"}, 17},
		{"stoch", "stoch:14,3,3", []string{"stoch_k_14_3_3", "stoch_d_14_3_3"}, 17},
		{"obv", "obv", []string{"obv"}, 0},
		{"adx:14", "adx:14", []string{"adx_14"}, 27},
		{"vwap:30", "vwap:30", []string{"vwap_30"}, 29},
		{"vwap:session", "vwap:session", []string{"vwap_session"}, 0},
		{"VWAP:Session", "vwap:session", []string{"vwap_session"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSpec(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tt.canon {
				t.Errorf("String() = %q, want %q", got, tt.canon)
			}
			if diff := cmp.Diff(tt.columns, s.Columns()); diff != "" {
				t.Errorf("Columns() (-want +got):\n%s", diff)
			}
			if got := s.Lookback(); got != tt.lookback {
				t.Errorf("Lookback() = %d, want %d", got, tt.lookback)
			}
			again, err := ParseSpec(s.String())
			if err != nil || !cmp.Equal(again, s) {
				t.Errorf("ParseSpec(String()) = %v, %v; want %v", again, err, s)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		in, want string
		unknown  bool
	}{
		{"", `unknown indicator ""`, true},
		{"foo:3", `unknown indicator "foo"`, true},
		{"sma:", `parameter 1 ("") is not a whole number`, false},
		{"sma:1", "parameter 1 is 1, want 2 to 100000", false},
		{"sma:100001", "parameter 1 is 100001, want 2 to 100000", false},
		{"sma:20.5", `parameter 1 ("20.5") is not a whole number`, false},
		{"sma:20,3", "sma takes at most 1 parameters, got 2", false},
		{"rsi:-3", "parameter 1 is -3", false},
		{"macd:26,12,9", "macd fast period 26 must be below slow period 12", false},
		{"macd:12,12,9", "must be below slow period", false},
		{"macd:12,26,1", "parameter 3 is 1, want 2", false},
		{"bbands:20,NaN", `parameter 2 ("NaN") is not a finite non-negative number`, false},
		{"bbands:20,-1", "not a finite non-negative number", false},
		{"bbands:20,2,inf", "not a finite non-negative number", false},
		{"obv:3", "obv takes at most 0 parameters, got 1", false},
		{"vwap:sessions", "not a whole number", false},
		{"stoch:0,3,3", "parameter 1 is 0, want 1", false},
		{"adx:1", "parameter 1 is 1, want 2", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseSpec(tt.in)
			if err == nil {
				t.Fatalf("ParseSpec(%q) succeeded", tt.in)
			}
			if !strings.HasPrefix(err.Error(), "analysis: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if got := errors.Is(err, ErrUnknownIndicator); got != tt.unknown {
				t.Errorf("errors.Is(err, ErrUnknownIndicator) = %v, want %v", got, tt.unknown)
			}
		})
	}
}

func TestSpecNotFromParseSpec(t *testing.T) {
	for _, s := range []Spec{{}, {Name: "sma"}, {Name: "sma", Params: []float64{0}}, {Name: "macd", Params: []float64{26, 12, 9}}} {
		if _, err := NewStream(s); err == nil {
			t.Errorf("NewStream(%#v) succeeded", s)
		}
		if _, err := s.Compute(Bars{}); err == nil {
			t.Errorf("Compute with %#v succeeded", s)
		}
	}
}

func TestStreamUnmarshalRejectsBadState(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not json", `{`},
		{"unknown spec", `{"spec":"nope","state":{}}`},
		{"period mismatch", `{"spec":"sma:20","state":{"window":{"period":5,"buf":[],"pos":0,"sum":0}}}`},
		{"pos out of range", `{"spec":"sma:3","state":{"window":{"period":3,"buf":[1,2,3],"pos":7,"sum":6}}}`},
		{"buffer too long", `{"spec":"sma:2","state":{"window":{"period":2,"buf":[1,2,3],"pos":0,"sum":6}}}`},
		{"count too high", `{"spec":"rsi:14","state":{"period":14,"count":99}}`},
		{"extremum ring short", `{"spec":"stoch:3,1,1","state":{"fast_k":3,"high":{"period":3,"max":true,"vals":[1],"seqs":[0]}}}`},
		{"vwap nonzero count", `{"spec":"vwap:2","state":{"pv":{"period":2,"buf":[1],"pos":0,"sum":1},"v":{"period":2,"buf":[1],"pos":0,"sum":1},"nonzero":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st Stream
			if err := json.Unmarshal([]byte(tt.in), &st); err == nil {
				t.Fatalf("Unmarshal(%s) succeeded", tt.in)
			}
		})
	}
}
