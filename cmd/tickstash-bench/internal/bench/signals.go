package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// SignalsConfig configures Signals.
type SignalsConfig struct {
	// Signals is how many signals each case publishes. The zero value means 20000.
	Signals int
	// Batch is how many signals one Distributor.Publish call carries (and how many raw
	// publishes are in flight before waiting for their acks). The zero value means 256.
	Batch int
	// Publishers is the number of concurrent publishing goroutines. The zero value means 4.
	Publishers int
	// Memory keeps the benchmark stream in memory. The zero value uses file storage,
	// as the signals role does.
	Memory bool
	// Rate is the signals per second of the fixed-rate case, each sent on a ticker's
	// tick. The zero value means 1000; a negative value skips the case.
	Rate int
	// RateSignals is how many signals one fixed-rate round sends. The zero value means
	// 3000 (3s at 1000/s).
	RateSignals int
	// Rounds is how many fixed-rate rounds each side runs, tickstash and raw JetStream
	// alternating. The zero value means 5.
	Rounds int
}

// SignalsCase is the outcome of one way of publishing.
type SignalsCase struct {
	Name      string
	Messages  int
	Bytes     int // payload size of one message
	Elapsed   time.Duration
	PerSecond float64
	// P50 and P99 are publish-to-subscriber latencies, measured by an ordered consumer.
	P50, P99 time.Duration
}

// SignalsReport is what `tickstash bench signals` prints.
type SignalsReport struct {
	Signals, Batch, Publishers int
	Storage                    string
	Cases                      []SignalsCase
	// Ratio is signals/s through the Distributor ÷ raw JetStream async publish/s;
	// the target of issue 5 is ≥ 0.5.
	Ratio float64
	// Rate is the fixed-rate case (issue 16), nil when it was skipped.
	Rate *SignalsRateReport
}

const (
	caseRawJS      = "raw JetStream PublishMsgAsync"
	caseSignalsPub = "tickstash signals Distributor"
)

// Signals benchmarks the signal publish path on the NATS server nc is connected to: it
// publishes cfg.Signals valid signals through a signals.Distributor (validation, JSON,
// Nats-Msg-Id, acks awaited and retried) and, in the same run, the same number of
// messages of the same size with bare JetStream async publishes, each case into a stream
// of its own that is deleted afterwards, and measures messages per second and the
// latency from publish to an ordered-consumer subscriber. Progress lines go to progress.
func Signals(ctx context.Context, nc *nats.Conn, cfg SignalsConfig, progress io.Writer) (SignalsReport, error) {
	if cfg.Signals <= 0 {
		cfg.Signals = 20000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Publishers <= 0 {
		cfg.Publishers = 4
	}
	rep := SignalsReport{Signals: cfg.Signals, Batch: cfg.Batch, Publishers: cfg.Publishers, Storage: "file"}
	if cfg.Memory {
		rep.Storage = "memory"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])

	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return rep, fmt.Errorf("bench: jetstream: %w", err)
	}
	sc := signals.StreamConfig{Stream: "TSBENCH_SIG_" + id, SubjectPrefix: "tsbench" + id + ".signals"}
	raw := signals.StreamConfig{Stream: "TSBENCH_RAW_" + id, SubjectPrefix: "tsbench" + id + ".raw"}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, sc.Stream)
		_ = js.DeleteStream(dctx, raw.Stream)
	}()
	// 16 MiB bounds what a crashed run leaves behind on the shared server; the oldest
	// messages, long read, go first.
	dcfg := signals.DistributorConfig{StreamConfig: sc, MaxAge: time.Hour, MaxBytes: 16 << 20, Memory: cfg.Memory}
	dist, err := signals.NewDistributor(ctx, nc, dcfg, nil, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	dcfg.StreamConfig = raw
	if _, err := signals.NewDistributor(ctx, nc, dcfg, nil, nil); err != nil { // creates the raw stream alike
		return rep, err
	}

	sigs := benchSignals(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cfg.Signals)
	size := 0
	if data, err := json.Marshal(sigs[0]); err == nil {
		size = len(data)
	}

	// Raw JetStream: same count, same size, same stream settings, unique msg ids.
	rawCase, err := measureSignals(ctx, nc, raw, caseRawJS, cfg, size, progress,
		func(ctx context.Context, lo, hi int) error {
			for i := lo; i < hi; i += cfg.Batch {
				end := min(i+cfg.Batch, hi)
				futs := make([]jetstream.PubAckFuture, 0, end-i)
				for j := i; j < end; j++ {
					data := make([]byte, size)
					binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
					m := &nats.Msg{Subject: raw.Subject("s", "binance", "BTC-USDT"),
						Header: nats.Header{jetstream.MsgIDHeader: []string{"raw-" + strconv.Itoa(j)}}, Data: data}
					f, err := js.PublishMsgAsync(m)
					if err != nil {
						return err
					}
					futs = append(futs, f)
				}
				for _, f := range futs {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						return err
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			return nil
		}, func(m jetstream.Msg) time.Time {
			return time.Unix(0, int64(binary.BigEndian.Uint64(m.Data())))
		})
	if err != nil {
		return rep, err
	}
	rep.Cases = append(rep.Cases, rawCase)

	sigCase, err := measureSignals(ctx, nc, sc, caseSignalsPub, cfg, size, progress,
		func(ctx context.Context, lo, hi int) error {
			for i := lo; i < hi; i += cfg.Batch {
				batch := sigs[i:min(i+cfg.Batch, hi)]
				now := time.Now()
				for k := range batch {
					batch[k].Time = now
				}
				if err := dist.Publish(ctx, batch...); err != nil {
					return err
				}
			}
			return nil
		}, func(m jetstream.Msg) time.Time {
			var s struct {
				Time time.Time `json:"time"`
			}
			_ = json.Unmarshal(m.Data(), &s)
			return s.Time
		})
	if err != nil {
		return rep, err
	}
	rep.Cases = append(rep.Cases, sigCase)
	if rawCase.PerSecond > 0 {
		rep.Ratio = sigCase.PerSecond / rawCase.PerSecond
	}
	if cfg.Rate >= 0 {
		rr, err := signalsAtRate(ctx, nc, dist, sc, raw, cfg, size, progress)
		if err != nil {
			return rep, err
		}
		rep.Rate = &rr
	}
	return rep, nil
}

// benchSignals returns n valid signals with distinct ids over 8 markets and 4 strategies,
// their candles starting at t0.
func benchSignals(t0 time.Time, n int) []market.Signal {
	syms := []market.Symbol{"BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT", "XRP-USDT", "ADA-USDT", "BNB-USDT", "LTC-USDT"}
	strategies := []string{"rsi", "macd", "bbands", "trend"}
	out := make([]market.Signal, n)
	for i := range out {
		ct := t0.Add(time.Duration(i/32) * time.Minute)
		st, sym := strategies[i%4], syms[(i/4)%8]
		out[i] = market.Signal{
			ID: market.SignalID(st, market.Binance, sym, market.Interval1m, ct), Schema: market.SignalSchema,
			Strategy: st, Exchange: market.Binance, Symbol: sym, Interval: market.Interval1m, CandleTime: ct,
			Side: market.Buy, Price: decimal.RequireFromString("95000.12"), Strength: 0.75, Time: ct,
			Indicators: map[string]float64{"rsi_14": 29.87, "macd_12_26_9": 12.5, "macd_signal_12_26_9": 11.25},
			Rules:      []string{"rsi_14<30|>70"},
		}
	}
	return out
}

// measureSignals runs publish over cfg.Signals messages split between cfg.Publishers goroutines
// while an ordered consumer on the stream records each message's latency from sent(m).
func measureSignals(ctx context.Context, nc *nats.Conn, sc signals.StreamConfig, name string, cfg SignalsConfig, size int,
	progress io.Writer, publish func(ctx context.Context, lo, hi int) error, sent func(jetstream.Msg) time.Time) (SignalsCase, error) {
	c := SignalsCase{Name: name, Messages: cfg.Signals, Bytes: size}
	js, err := jetstream.New(nc)
	if err != nil {
		return c, err
	}
	cons, err := js.OrderedConsumer(ctx, sc.Stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return c, fmt.Errorf("bench: consumer on %s: %w", sc.Stream, err)
	}
	lat := make([]time.Duration, 0, cfg.Signals)
	var mu sync.Mutex
	got := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d := time.Since(sent(m))
		mu.Lock()
		lat = append(lat, d)
		if len(lat) == cfg.Signals {
			close(got)
		}
		mu.Unlock()
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return c, err
	}
	defer cc.Stop()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, cfg.Publishers)
	per := (cfg.Signals + cfg.Publishers - 1) / cfg.Publishers
	for p := range cfg.Publishers {
		lo, hi := p*per, min((p+1)*per, cfg.Signals)
		wg.Go(func() { errs[p] = publish(ctx, lo, hi) })
	}
	wg.Wait()
	c.Elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("bench: %s: %w", name, err)
	}
	c.PerSecond = float64(cfg.Signals) / c.Elapsed.Seconds()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		return c, fmt.Errorf("bench: %s: the subscriber received %d of %d messages", name, len(lat), cfg.Signals)
	case <-ctx.Done():
		return c, ctx.Err()
	}
	mu.Lock()
	slices.Sort(lat)
	c.P50, c.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	mu.Unlock()
	if progress != nil {
		fmt.Fprintf(progress, "%-32s %8.0f msgs/s  p50 %-10v p99 %v\n", name, c.PerSecond, round(c.P50), round(c.P99))
	}
	return c, nil
}

// Markdown renders the report as a table and the ratio against its target.
func (r SignalsReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages per case, %d publishers, batches of %d, %s storage.\n\n", r.Signals, r.Publishers, r.Batch, r.Storage)
	b.WriteString("| case | msgs/s | bytes | p50 publish→subscriber | p99 |\n|---|---:|---:|---:|---:|\n")
	for _, c := range r.Cases {
		fmt.Fprintf(&b, "| %s | %.0f | %d | %v | %v |\n", c.Name, c.PerSecond, c.Bytes, round(c.P50), round(c.P99))
	}
	met := "no"
	if r.Ratio >= 0.5 {
		met = "yes"
	}
	fmt.Fprintf(&b, "\n| target | ratio | met |\n|---|---:|---|\n| signals ÷ raw JetStream ≥ 0.5 | %.2f | %s |\n", r.Ratio, met)
	if r.Rate != nil {
		b.WriteString("\n")
		b.WriteString(r.Rate.Markdown())
	}
	return b.String()
}
