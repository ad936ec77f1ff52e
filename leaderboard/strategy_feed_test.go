package leaderboard

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/market"
)

// TestStrategyFeed publishes signals on the real NATS, a message that is not a signal
// between them, and checks that the feed closes the paper trade on the boards.
func TestStrategyFeed(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS at %s: %v", testenv.NATSURL(), err)
	}
	defer nc.Close()
	s, _, _ := newStore(t, Config{})
	tracker := NewStrategyTracker(s, StrategyConfig{})
	prefix := fmt.Sprintf("tt.signals.%d", time.Now().UnixNano())
	feed := NewStrategyFeed(nc, tracker, StrategyFeedConfig{SubjectPrefix: prefix}, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- feed.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); nc.NumSubscriptions() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the feed did not subscribe within 10s")
		}
	}
	t0 := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	publish := func(side market.Side, price string, at time.Time) {
		b, err := json.Marshal(market.Signal{Schema: market.SignalSchema, ID: market.SignalID("trend", market.Binance, "BTC-USDT", market.Interval1m, at),
			Strategy: "trend", Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, CandleTime: at, Side: side, Price: d(price), Strength: 0.5, Time: at.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(prefix+".trend.binance.BTC-USDT", b); err != nil {
			t.Fatal(err)
		}
	}
	publish(market.Buy, "100", t0)
	if err := nc.Publish(prefix+".trend.binance.BTC-USDT", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	publish(market.Sell, "110", t0.Add(time.Minute))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var st StrategyStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err = tracker.Stats(context.Background(), "trend"); err != nil {
			t.Fatal(err)
		}
		if st.Trades == 1 || time.Now().After(deadline) {
			break
		}
	}
	if st.Trades != 1 || st.Wins != 1 || !st.Return.Equal(d("10")) {
		t.Errorf("stats %+v, want one winning trade of +10%%", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := NewStrategyFeed(nc, tracker, StrategyFeedConfig{}, nil).Run(context.Background()); err == nil {
		t.Error("a feed without a subject prefix ran")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
