package signals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

func connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatalf("nats at %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// uniqueStream returns a stream config of its own for tb and deletes the stream at the end.
func uniqueStream(tb testing.TB, nc *nats.Conn) StreamConfig {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	sc := StreamConfig{Stream: "TT_SIG_" + id, SubjectPrefix: "tt" + id + ".signals"}
	testenv.DeleteStreams(tb, sc.Stream)
	return sc
}

// uniqueAnalysisStream returns an analysis update stream of its own for tb (in memory)
// and deletes it at the end.
func uniqueAnalysisStream(tb testing.TB, nc *nats.Conn) pipeline.AnalysisStream {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	as := pipeline.AnalysisStream{Name: "TT_AN_" + id, SubjectPrefix: "tt" + id + ".analysis", Memory: true}
	testenv.DeleteStreams(tb, as.Name)
	return as
}

// macdUpdate is the analysis update of BTC-USDT 1m at the i-th minute with MACD and
// signal line values, closing at 95000.25.
func macdUpdate(i int, macd, signal float64) pipeline.AnalysisUpdate {
	return pipeline.AnalysisUpdate{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m,
		Analyzer: "default", CandleTime: t0.Add(time.Duration(i) * time.Minute), Close: decimal.RequireFromString("95000.25"),
		Values: map[string]float64{"macd_12_26_9": macd, "macd_signal_12_26_9": signal}, JobID: "j"}
}

// waitFor polls cond until it holds, failing tb after 20s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testSignal returns a valid signal of strategy on sym for the i-th minute candle.
func testSignal(strategy string, sym market.Symbol, i int) market.Signal {
	ct := t0.Add(time.Duration(i) * time.Minute)
	return market.Signal{
		ID: market.SignalID(strategy, market.Binance, sym, market.Interval1m, ct), Schema: market.SignalSchema,
		Strategy: strategy, Exchange: market.Binance, Symbol: sym, Interval: market.Interval1m,
		CandleTime: ct, Side: market.Buy, Price: decimal.RequireFromString("95000.5"), Strength: 1,
		Time: ct.Add(time.Minute), Indicators: map[string]float64{"rsi_14": 31},
	}
}

func counter(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			}
		}
	}
	return sum
}

var _ = testutil.ToFloat64

// collect subscribes in the background and sends each signal to the returned channel.
func collect(tb testing.TB, ctx context.Context, c *Client, opts SubscribeOptions) (<-chan market.Signal, <-chan error) {
	tb.Helper()
	ch := make(chan market.Signal, 10000)
	done := make(chan error, 1)
	go func() {
		done <- c.Subscribe(ctx, opts, func(_ context.Context, s market.Signal) error {
			ch <- s
			return nil
		})
	}()
	return ch, done
}

// receive takes n signals from ch within d, failing tb otherwise.
func receive(tb testing.TB, ch <-chan market.Signal, n int, d time.Duration) []market.Signal {
	tb.Helper()
	var out []market.Signal
	timeout := time.After(d)
	for len(out) < n {
		select {
		case s := <-ch:
			out = append(out, s)
		case <-timeout:
			tb.Fatalf("received %d signals within %s, want %d", len(out), d, n)
		}
	}
	return out
}

// quiet checks that nothing more arrives on ch within d.
func quiet(tb testing.TB, ch <-chan market.Signal, d time.Duration) {
	tb.Helper()
	select {
	case s := <-ch:
		tb.Fatalf("unexpected signal %s", s.ID)
	case <-time.After(d):
	}
}
