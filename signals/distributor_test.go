package signals

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

func TestDistributorPublishSubscribe(t *testing.T) {
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	d, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(nc, ClientConfig{StreamConfig: sc}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := collect(t, ctx, c, SubscribeOptions{Strategies: []string{"rsi"}, Symbols: []market.Symbol{"BTC-USDT"}})
	time.Sleep(200 * time.Millisecond) // let the consumer start before publishing (FromNew)

	want := []market.Signal{testSignal("rsi", "BTC-USDT", 0), testSignal("rsi", "BTC-USDT", 1)}
	other := testSignal("macd", "BTC-USDT", 0)
	bad := testSignal("rsi", "BTC-USDT", 2)
	bad.Strength = 2
	err = d.Publish(ctx, append(want, other, bad)...)
	if !errors.Is(err, ErrInvalidSignal) {
		t.Fatalf("Publish = %v, want ErrInvalidSignal for the bad one", err)
	}
	// Republishing is idempotent: the server drops the repeats by Nats-Msg-Id.
	if err := d.Publish(ctx, want...); err != nil {
		t.Fatal(err)
	}
	got := receive(t, ch, 2, 5*time.Second)
	for i := range want {
		if got[i].ID != want[i].ID || !got[i].Price.Equal(want[i].Price) || got[i].Indicators["rsi_14"] != 31 {
			t.Errorf("signal %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	quiet(t, ch, 300*time.Millisecond)
	if v := counter(t, reg, "tickstash_signals_invalid_total"); v != 1 {
		t.Errorf("invalid = %v, want 1", v)
	}
	if v := counter(t, reg, "tickstash_signals_duplicates_suppressed_total"); v != 2 {
		t.Errorf("duplicates = %v, want 2", v)
	}
	if v := counter(t, reg, "tickstash_signals_published_total"); v != 5 {
		t.Errorf("published = %v, want 5 (3 stored + 2 duplicates)", v)
	}
	if v := counter(t, reg, "tickstash_signals_publish_duration_seconds"); v != 5 {
		t.Errorf("latency samples = %v, want 5", v)
	}
}

func TestLateJoinerGetsLastPerSubject(t *testing.T) {
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var sigs []market.Signal
	for i := range 5 {
		sigs = append(sigs, testSignal("rsi", "BTC-USDT", i), testSignal("rsi", "ETH-USDT", i), testSignal("macd", "BTC-USDT", i))
	}
	if err := d.Publish(ctx, sigs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		opts    SubscribeOptions
		wantIDs map[string]bool
	}{
		{"one strategy", SubscribeOptions{Strategies: []string{"rsi"}, From: FromLast}, map[string]bool{
			testSignal("rsi", "BTC-USDT", 4).ID: true, testSignal("rsi", "ETH-USDT", 4).ID: true}},
		{"durable, strategy and symbol", SubscribeOptions{Strategies: []string{"rsi", "macd"}, Symbols: []market.Symbol{"BTC-USDT"}, From: FromLast, Durable: "late"}, map[string]bool{
			testSignal("rsi", "BTC-USDT", 4).ID: true, testSignal("macd", "BTC-USDT", 4).ID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(nc, ClientConfig{StreamConfig: sc}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sctx, scancel := context.WithCancel(ctx)
			ch, done := collect(t, sctx, c, tc.opts)
			got := receive(t, ch, len(tc.wantIDs), 5*time.Second)
			for _, s := range got {
				if !tc.wantIDs[s.ID] {
					t.Errorf("got %s, want the last of each subject %v", s.ID, tc.wantIDs)
				}
			}
			quiet(t, ch, 300*time.Millisecond)
			scancel()
			if err := <-done; err != nil {
				t.Errorf("Subscribe = %v", err)
			}
		})
	}
}
