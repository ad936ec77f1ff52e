package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// testStreams returns flags naming a signal stream and an analysis update stream of the
// test's own on the real NATS (tag makes them unique), and deletes both at the end.
func testStreams(t *testing.T, tag string) (args []string, signalStream string, analysis pipeline.AnalysisStream) {
	t.Helper()
	signalStream = "TT_SIG_" + tag
	args, analysis = testAnalysisStream(t, tag, signalStream)
	return append(args, "--signals-stream", signalStream, "--signals-subject-prefix", "ttsig."+tag,
		"--signals-max-bytes", strconv.Itoa(testenv.StreamMaxBytes)), signalStream, analysis
}

// testAnalysisStream returns flags naming an analysis update stream of the test's own on
// the real NATS, so that tests running side by side do not share the default one, and
// deletes it (and the other streams named) at the end.
func testAnalysisStream(t *testing.T, tag string, alsoDelete ...string) ([]string, pipeline.AnalysisStream) {
	t.Helper()
	as := pipeline.AnalysisStream{Name: testenv.StreamPrefix + "AN_" + tag, SubjectPrefix: "ttan." + tag, MaxBytes: testenv.StreamMaxBytes}
	testenv.DeleteStreams(t, append(alsoDelete, as.Name)...)
	return []string{"--analysis-stream", as.Name, "--analysis-subject-prefix", as.SubjectPrefix,
		"--analysis-max-bytes", strconv.FormatInt(as.MaxBytes, 10)}, as
}

// streamSignals reads every signal in the stream and counts each id.
func streamSignals(t *testing.T, js jetstream.JetStream, stream string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("signal stream %s: %v", stream, err)
	}
	seen := map[string]int{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return seen
		}
		var s market.Signal
		if err := json.Unmarshal(msg.Data(), &s); err != nil {
			t.Fatalf("stream message %s: %v", msg.Data(), err)
		}
		seen[s.ID]++
	}
}

// TestSignalsRoleKilledMidFlow is the analysis → signals hop across a crash: the test
// publishes analysis updates as the analysis stage does (pipeline.AnalysisPublisher)
// while a real `tickstash signals` process turns them into signals; it kills that
// process with SIGKILL mid-flow, publishes the rest of the updates while no signals role
// runs, then starts a new process. Every update raises one signal (RSI(2) alternating
// 20 and 80 crosses every time), and every expected signal must be in the signal stream
// exactly once: none lost with the dead process or while it was down, none repeated by
// the redelivery of the updates it had not acknowledged.
func TestSignalsRoleKilledMidFlow(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	streamArgs, signalStream, as := testStreams(t, prefix[3:])
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub, err := pipeline.NewAnalysisPublisher(ctx, nc, as)
	if err != nil {
		t.Fatal(err)
	}
	strategies := filepath.Join(t.TempDir(), "s.yaml")
	_ = os.WriteFile(strategies, []byte("strategies:\n  - name: flip\n    intervals: [1m]\n    rules:\n      - type: rsi\n        period: 2\n"), 0o644)
	args := append([]string{"signals", "--strategies", strategies, "--indicators", "rsi:2", "--signals-ack-wait", "1s",
		"--redis-url", redistest.URL(), "--nats-url", testenv.NATSURL(), "--key-prefix", prefix, "--log-format", "json"},
		streamArgs...)

	const markets, candles = 8, 40
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	want := map[string]bool{}
	var updates []pipeline.AnalysisUpdate // candle by candle, every market at each
	for i := range candles {
		for m := range markets {
			sym := market.Symbol(fmt.Sprintf("K%d-USD", m))
			u := pipeline.AnalysisUpdate{Exchange: market.Kraken, Symbol: sym, Interval: market.Interval1m, Analyzer: "default",
				CandleTime: t0.Add(time.Duration(i) * time.Minute), Close: decimal.NewFromInt(int64(100 + i)),
				Values: map[string]float64{"rsi_2": float64(20 + 60*(i%2))}, JobID: "j"}
			updates = append(updates, u)
			if i > 0 {
				want[market.SignalID("flip", market.Kraken, sym, market.Interval1m, u.CandleTime)] = true
			}
		}
	}
	publish := func(us []pipeline.AnalysisUpdate) {
		for i := range us {
			if _, err := pub.PublishUpdate(ctx, &us[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	signalCount := func() uint64 {
		st, err := js.Stream(ctx, signalStream)
		if err != nil {
			return 0
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	waitLong := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 90s (%d signals in the stream)", what, signalCount())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := startProcess(t, args...)
	waitLong("the first signals process started", func() bool { return countMsg(first, "signals role started") == 1 })
	// Phase one: a flow of updates; the process is killed while it works through them.
	half := len(updates) / 2
	flowDone := make(chan struct{})
	go func() {
		defer close(flowDone)
		for i := 0; i < half; i += markets {
			publish(updates[i : i+markets])
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitLong("a quarter of the signals published", func() bool { return signalCount() >= uint64(len(want)/4) })
	first.kill()
	killedAt := signalCount()
	<-flowDone
	// Phase two: the rest of the updates, published while no signals role runs.
	publish(updates[half:])
	time.Sleep(300 * time.Millisecond)
	if n := signalCount(); n != killedAt {
		t.Fatalf("signals went from %d to %d while no signals role ran", killedAt, n)
	}
	if killedAt >= uint64(len(want)/2) {
		t.Logf("the process had published %d signals of the first phase's %d when killed: not mid-flow", killedAt, len(want)/2)
	}
	// Phase three: a new process takes over the durable consumer.
	start := time.Now()
	second := startProcess(t, args...)
	waitLong("every signal published after the restart", func() bool { return signalCount() >= uint64(len(want)) })
	t.Logf("killed after %d of %d signals; the restarted process published the remaining %d in %v",
		killedAt, len(want), uint64(len(want))-killedAt, time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // room for a duplicate to show up, were there one
	seen := streamSignals(t, js, signalStream)
	for id, n := range seen {
		if !want[id] {
			t.Errorf("unexpected signal %s", id)
		}
		if n != 1 {
			t.Errorf("signal %s is in the stream %d times", id, n)
		}
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("signal %s missing", id)
		}
	}
	if code := second.stop(t); code != 0 {
		t.Errorf("second process exit %d:\n%.3000s", code, second.stderr())
	}
}
