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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// TestAnalyzeAndSignalsSideBySide runs two `analyze` and two `signals` processes against
// the real Redis and NATS, kills one analyze process with SIGKILL while jobs are queued,
// and checks that every job still completes and that every signal is in the stream
// exactly once.
func TestAnalyzeAndSignalsSideBySide(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, subjects := "TT_"+prefix[3:], "tt."+prefix[3:]
	testenv.DeleteStreams(t, stream)

	// 24 markets. Phase one's candles end on two falls (RSI(2) near 0); phase two adds a
	// jump, so RSI(2) crosses up through 30 on every market: one signal each.
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	const markets = 24
	var syms []market.Symbol
	candle := func(sym market.Symbol, i int, close int64) market.Candle {
		p := decimal.NewFromInt(close)
		return market.Candle{Exchange: market.Kraken, Symbol: sym, Interval: market.Interval1m,
			OpenTime: t0.Add(time.Duration(i) * time.Minute), Open: p, High: p, Low: p, Close: p,
			Volume: decimal.NewFromInt(1), QuoteVolume: p, Trades: 1, Closed: true}
	}
	for m := 0; m < markets; m++ {
		sym := market.Symbol(fmt.Sprintf("M%d-USD", m))
		syms = append(syms, sym)
		var cs []market.Candle
		for i := 0; i < 37; i++ {
			cs = append(cs, candle(sym, i, int64(100+(i*7+m)%11)))
		}
		cs = append(cs, candle(sym, 37, 110), candle(sym, 38, 105), candle(sym, 39, 100))
		if _, err := store.Write(ctx, &cache.Batch{Candles: cs}); err != nil {
			t.Fatal(err)
		}
	}
	strategies := filepath.Join(t.TempDir(), "s.yaml")
	_ = os.WriteFile(strategies, []byte("strategies:\n  - name: side-by-side\n    intervals: [1m]\n    rules:\n      - type: rsi\n        period: 2\n        lower: 30\n        upper: 70\n"), 0o644)
	analysisArgs, _ := testAnalysisStream(t, prefix[3:])
	common := append([]string{"--redis-url", redistest.URL(), "--nats-url", testenv.NATSURL(), "--key-prefix", prefix,
		"--log-format", "json"}, analysisArgs...)
	var sigProcs []*proc
	for i := 0; i < 2; i++ {
		sigProcs = append(sigProcs, startProcess(t, append([]string{"signals", "--strategies", strategies, "--indicators", "rsi:2",
			"--signals-stream", stream, "--signals-subject-prefix", subjects,
			"--signals-max-bytes", strconv.Itoa(testenv.StreamMaxBytes)}, common...)...))
	}
	// Signals roles subscribe before the analysis starts publishing.
	testenv.WaitFor(t, "both signals processes started", func() bool {
		return countMsg(sigProcs[0], "signals role started") == 1 && countMsg(sigProcs[1], "signals role started") == 1
	})
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	enqueueAll := func() []string {
		var ids []string
		for _, sym := range syms {
			id, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: market.Kraken, Symbol: sym, Interval: market.Interval1m})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	analyzeArgs := append([]string{"analyze", "--indicators", "rsi:2", "--job-lease", "2s", "--concurrency", "2"}, common...)
	a1 := startProcess(t, analyzeArgs...)
	a2 := startProcess(t, analyzeArgs...)
	ids := enqueueAll()
	testenv.WaitFor(t, "phase one's jobs done", func() bool { return jobsDone(ctx, q, ids) == len(ids) })

	for m, sym := range syms {
		if _, err := store.Write(ctx, &cache.Batch{Candles: []market.Candle{candle(sym, 40, int64(130+m))}}); err != nil {
			t.Fatal(err)
		}
	}
	ids = enqueueAll()
	a1.kill() // a worker dies with jobs queued, perhaps some read ahead: none may be lost
	testenv.WaitFor(t, "phase two's jobs done after one worker was killed", func() bool { return jobsDone(ctx, q, ids) == len(ids) })

	// Every result was evaluated by exactly one signals process; the stream holds each
	// signal once. A job is done before its update has gone through the rules and
	// JetStream, so wait for the stream to settle (or for the deadline: then the check
	// below fails).
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := js.Stream(ctx, stream)
		if err == nil {
			if info, err := st.Info(ctx); err == nil && info.State.Msgs >= markets {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up, were there one
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("signal stream %s: %v", stream, err)
	}
	seen := map[string]int{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		var s market.Signal
		if err := json.Unmarshal(msg.Data(), &s); err != nil {
			t.Fatalf("stream message %s: %v", msg.Data(), err)
		}
		seen[s.ID]++
	}
	if len(seen) != markets {
		t.Errorf("%d signals in the stream, want one per market (%d)", len(seen), markets)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("signal %s is in the stream %d times", id, n)
		}
	}
	t.Logf("%d jobs per phase, %d signals", len(ids), len(seen))
	for _, p := range append(sigProcs, a2) {
		if code := p.stop(t); code != 0 {
			t.Errorf("exit %d:\n%.2000s", code, p.stderr())
		}
	}
}

func jobsDone(ctx context.Context, q *analysis.Queue, ids []string) int {
	n := 0
	for _, id := range ids {
		if st, err := q.Status(ctx, id); err == nil && st.State == analysis.JobDone {
			n++
		}
	}
	return n
}

// countMsg counts the JSON log records with msg (every record for "").
func countMsg(p *proc, msg string) int {
	n := 0
	for _, rec := range p.logs() {
		if msg == "" || rec["msg"] == msg {
			n++
		}
	}
	return n
}
