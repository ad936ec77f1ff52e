package signals

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

func pt(i int, close string, kv ...any) *Point {
	p := &Point{CandleTime: t0.Add(time.Duration(i) * time.Minute), Close: decimal.RequireFromString(close), Values: map[string]float64{}}
	for j := 0; j+1 < len(kv); j += 2 {
		p.Values[kv[j].(string)] = kv[j+1].(float64)
	}
	return p
}

func TestRuleCrossings(t *testing.T) {
	rsi := Rule{Kind: RSICross, Period: 14, Lower: 30, Upper: 70, Weight: 1}
	macd := Rule{Kind: MACDCross, Fast: 12, Slow: 26, Signal: 9, Weight: 1}
	bb := Rule{Kind: BBandsBreak, Period: 20, Dev: 2, Weight: 1}
	ma := Rule{Kind: MACross, Fast: 20, Slow: 50, MA: "sma", Weight: 1}
	tests := []struct {
		name      string
		rule      Rule
		prev, cur *Point
		want      market.Side
	}{
		{"rsi up through lower", rsi, pt(0, "1", "rsi_14", 25.0), pt(1, "1", "rsi_14", 31.0), market.Buy},
		{"rsi touches lower from below", rsi, pt(0, "1", "rsi_14", 29.9), pt(1, "1", "rsi_14", 30.0), market.Buy},
		{"rsi stays below", rsi, pt(0, "1", "rsi_14", 20.0), pt(1, "1", "rsi_14", 25.0), market.SideUnknown},
		{"rsi down through lower", rsi, pt(0, "1", "rsi_14", 35.0), pt(1, "1", "rsi_14", 25.0), market.SideUnknown},
		{"rsi down through upper", rsi, pt(0, "1", "rsi_14", 75.0), pt(1, "1", "rsi_14", 69.0), market.Sell},
		{"rsi missing before", rsi, pt(0, "1"), pt(1, "1", "rsi_14", 31.0), market.SideUnknown},
		{"macd crosses above", macd, pt(0, "1", "macd_12_26_9", -1.0, "macd_signal_12_26_9", 0.0), pt(1, "1", "macd_12_26_9", 0.5, "macd_signal_12_26_9", 0.1), market.Buy},
		{"macd crosses below", macd, pt(0, "1", "macd_12_26_9", 1.0, "macd_signal_12_26_9", 0.0), pt(1, "1", "macd_12_26_9", -0.5, "macd_signal_12_26_9", 0.1), market.Sell},
		{"macd stays above", macd, pt(0, "1", "macd_12_26_9", 1.0, "macd_signal_12_26_9", 0.0), pt(1, "1", "macd_12_26_9", 2.0, "macd_signal_12_26_9", 0.1), market.SideUnknown},
		{"close breaks below lower band", bb, pt(0, "100", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), pt(1, "89", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), market.Buy},
		{"close breaks above upper band", bb, pt(0, "100", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), pt(1, "111", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), market.Sell},
		{"close stays below", bb, pt(0, "85", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), pt(1, "84", "bbands_upper_20_2", 110.0, "bbands_lower_20_2", 90.0), market.SideUnknown},
		{"fast above slow", ma, pt(0, "1", "sma_20", 9.0, "sma_50", 10.0), pt(1, "1", "sma_20", 10.5, "sma_50", 10.0), market.Buy},
		{"fast below slow", ma, pt(0, "1", "sma_20", 11.0, "sma_50", 10.0), pt(1, "1", "sma_20", 9.5, "sma_50", 10.0), market.Sell},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.vote(tc.prev, tc.cur); got != tc.want {
				t.Errorf("vote = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEvaluateStrengthAndIdentity(t *testing.T) {
	s := Strategy{Name: "mix", Intervals: []market.Interval{market.Interval1m}, Rules: []Rule{
		{Kind: RSICross, Period: 14, Lower: 30, Upper: 70, Weight: 1},
		{Kind: MACross, Fast: 20, Slow: 50, MA: "sma", Weight: 3},
	}}
	prev := pt(0, "100", "rsi_14", 25.0, "sma_20", 11.0, "sma_50", 10.0)
	cur := pt(1, "101.5", "rsi_14", 35.0, "sma_20", 9.0, "sma_50", 10.0) // rsi buys (1), sma sells (3)
	sig, ok := s.Evaluate(market.Binance, "BTC-USDT", market.Interval1m, prev, cur, t0.Add(2*time.Minute))
	if !ok {
		t.Fatal("no signal")
	}
	if sig.Side != market.Sell || sig.Strength != 0.5 || sig.ID != "mix:binance:BTC-USDT:1m:1767225660000" ||
		!sig.Price.Equal(decimal.RequireFromString("101.5")) || len(sig.Indicators) != 2 || sig.Indicators["sma_20"] != 9 {
		t.Errorf("signal %+v", sig)
	}
	if err := sig.Validate(); err != nil {
		t.Error(err)
	}
	if _, ok := s.Evaluate(market.Binance, "BTC-USDT", market.Interval1m, cur, cur, t0); ok {
		t.Error("signal from a candle that is not after the previous one")
	}
	if _, ok := s.Evaluate(market.Binance, "BTC-USDT", market.Interval1m, nil, cur, t0); ok {
		t.Error("signal without a previous point")
	}
}

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	sigs []market.Signal
}

func (r *recorder) Publish(_ context.Context, sigs ...market.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sigs = append(r.sigs, sigs...)
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.sigs {
		out = append(out, s.ID)
	}
	return out
}

// TestRoleNoMissNoRepeatAcrossRestart feeds updates to one Role, then to a new Role on the
// same Redis state (a restart), and checks that a cross spanning the restart is raised
// once and a replayed update raises nothing.
func TestRoleNoMissNoRepeatAcrossRestart(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	strategies, err := ParseStrategies("s.yaml", []byte("strategies:\n  - name: rsi\n    intervals: [1m]\n    rules: [{type: rsi}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	newRole := func(pub Publisher) *Role {
		r, err := NewRole(context.Background(), nil, rdb, pub, nil, RoleConfig{Strategies: strategies, Prefix: prefix, Now: func() time.Time { return t0.Add(time.Hour) }}, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	upd := func(i int, rsi float64) Update {
		return Update{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m,
			CandleTime: t0.Add(time.Duration(i) * time.Minute), Close: decimal.NewFromInt(100), Values: map[string]float64{"rsi_14": rsi}}
	}
	ctx := context.Background()
	pub := &recorder{}
	r1 := newRole(pub)
	for i, v := range []float64{50, 40, 28} {
		if err := r1.Handle(ctx, upd(i, v)); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.ids()) != 0 {
		t.Fatalf("signals before any cross: %v", pub.ids())
	}
	// Restart: the new role must see rsi 28 as the previous value.
	pub2 := &recorder{}
	r2 := newRole(pub2)
	if err := r2.Handle(ctx, upd(3, 33)); err != nil {
		t.Fatal(err)
	}
	want := market.SignalID("rsi", market.Binance, "BTC-USDT", market.Interval1m, t0.Add(3*time.Minute))
	if got := pub2.ids(); len(got) != 1 || got[0] != want {
		t.Fatalf("after restart: %v, want [%s]", got, want)
	}
	// A replay of the same update, or of an older one, raises nothing again.
	r3 := newRole(pub2)
	for _, u := range []Update{upd(3, 33), upd(2, 28)} {
		if err := r3.Handle(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if got := pub2.ids(); len(got) != 1 {
		t.Fatalf("replay raised %v", got)
	}
	key := newKeyspace(prefix).state("rsi", market.Binance, "BTC-USDT", market.Interval1m)
	if ttl := rdb.TTL(ctx, key).Val(); ttl <= 0 || ttl > 3*time.Minute+time.Hour {
		t.Errorf("state TTL %v", ttl)
	}
	var p Point
	if err := json.Unmarshal([]byte(rdb.Get(ctx, key).Val()), &p); err != nil || p.Values["rsi_14"] != 33 {
		t.Errorf("state %+v, %v", p, err)
	}
}
