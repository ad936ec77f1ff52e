package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
	"github.com/tickstash/tickstash/signals"
)

// ChainConfig configures Chain.
type ChainConfig struct {
	// Samples is how many candle closes one round times. The zero value means 100.
	Samples int
	// Rounds is how many rounds run; each reports its p50 and p99. The zero value means 5.
	Rounds int
	// Gap is the pause between one signal's arrival and the next closing trade. The zero
	// value means 10ms.
	Gap time.Duration
}

// ChainReport is what `tickstash-bench chain` prints: the latency a bot sees from the
// trade that closes a candle to the signal that candle raised, through the real roles.
type ChainReport struct {
	Samples, Rounds int
	P50, P99        []time.Duration // per round
}

// chainStrategy raises a signal on every closed candle of the zigzag Chain feeds: with
// closes alternating between two prices, the 2-candle average always lies between the
// 3-candle average's values, so the averages cross on every candle.
const chainStrategy = `strategies:
  - name: zigzag
    intervals: [1m]
    rules:
      - type: sma_cross
        fast: 2
        slow: 3
`

// chainSource hands the events of a channel to the ingester.
type chainSource chan ingest.Event

func (chainSource) Name() string { return "bench" }

func (s chainSource) Run(ctx context.Context, out chan<- ingest.Event) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s:
			select {
			case out <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// Chain measures the whole chain a bot sees, in process with the real roles on the real
// Redis and NATS: a trade of a new minute reaches the ingester (candle aggregation, the
// Redis write, the candle-closed event enqueueing an analysis job), an analysis worker
// runs the default indicators (plus sma:2 and sma:3) over the market's candles, stores
// the result and publishes the update to JetStream, the signals role evaluates a
// strategy that fires on every candle and publishes the signal, and a signals.Client
// subscription hands it over. One sample is the time from giving the trade to the
// ingester's source until the handler gets the signal of the candle it closed; samples
// run one after another. Keys live under a prefix of their own and the streams are
// created for the run; both are deleted afterwards.
func Chain(ctx context.Context, rdb redis.UniversalClient, nc *nats.Conn, cfg ChainConfig, progress io.Writer) (ChainReport, error) {
	if cfg.Samples <= 0 {
		cfg.Samples = 100
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 10 * time.Millisecond
	}
	rep := ChainReport{Samples: cfg.Samples, Rounds: cfg.Rounds}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	prefix := "tsbench" + id
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, prefix+"*") }()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, fmt.Errorf("bench: jetstream: %w", err)
	}
	as := pipeline.AnalysisStream{Name: "TSBENCH_AN_" + id, SubjectPrefix: "tsbench" + id + ".an", MaxBytes: 16 << 20, MaxAge: time.Hour}
	sc := signals.StreamConfig{Stream: "TSBENCH_CHAIN_" + id, SubjectPrefix: "tsbench" + id + ".chain"}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, as.Name)
		_ = js.DeleteStream(dctx, sc.Stream)
	}()
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()

	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, reg)
	queue := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, reg)
	src := make(chainSource)
	ing := ingest.NewIngester(store, queue, []ingest.Source{src}, ingest.IngesterConfig{
		Aggregator:         ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m}},
		EventTimeWatermark: true, // the trades' minutes run ahead of the clock
	}, log, reg)
	apub, err := pipeline.NewAnalysisPublisher(ctx, nc, as)
	if err != nil {
		return rep, err
	}
	worker := analysis.NewWorker(queue, store, apub, analysis.WorkerConfig{
		Analyzers: map[string][]string{"default": append(slices.Clone(analysis.DefaultIndicators), "sma:2", "sma:3")},
	}, log, reg)
	dist, err := signals.NewDistributor(ctx, nc, signals.DistributorConfig{StreamConfig: sc, MaxAge: time.Hour, MaxBytes: 16 << 20}, log, reg)
	if err != nil {
		return rep, err
	}
	strategies, err := signals.ParseStrategies("chain.yaml", []byte(chainStrategy))
	if err != nil {
		return rep, err
	}
	role, err := signals.NewRole(ctx, nc, rdb, dist, store, signals.RoleConfig{
		Strategies: strategies, Stream: as, Prefix: prefix, Durable: "tsbench-" + id,
	}, log, reg)
	if err != nil {
		return rep, err
	}
	client, err := signals.NewClient(nc, signals.ClientConfig{StreamConfig: sc}, nil)
	if err != nil {
		return rep, err
	}

	// got receives the candle time of every signal delivered, with its arrival time.
	type arrival struct {
		candle time.Time
		at     time.Time
	}
	got := make(chan arrival, 1024)
	rctx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error { return ing.Run(gctx) })
	g.Go(func() error { return worker.Run(gctx) })
	g.Go(func() error { return role.Run(gctx) })
	g.Go(func() error {
		return client.Subscribe(gctx, signals.SubscribeOptions{}, func(_ context.Context, s market.Signal) error {
			select {
			case got <- arrival{s.CandleTime, time.Now()}:
			default:
			}
			return nil
		})
	})
	var once sync.Once
	finish := func() error {
		var err error
		once.Do(func() { stop(); err = g.Wait() })
		return err
	}
	defer func() { _ = finish() }()

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	minute := 0
	// closeCandle sends the trade of the next minute, closing the candle before it, and
	// returns when the signal of that candle arrives.
	closeCandle := func(wait time.Duration) (time.Duration, error) {
		minute++
		price := "100"
		if minute%2 == 1 {
			price = "110"
		}
		ev, err := ingest.NewTradeEvent(market.Trade{Exchange: market.Binance, Symbol: "ZIG-USDT",
			ID: strconv.Itoa(minute), Price: decimal.RequireFromString(price), Qty: decimal.NewFromInt(1),
			Side: market.Buy, Time: t0.Add(time.Duration(minute) * time.Minute)})
		if err != nil {
			return 0, err
		}
		closed := t0.Add(time.Duration(minute-1) * time.Minute)
		start := time.Now()
		select {
		case src <- ev:
		case <-gctx.Done():
			return 0, fmt.Errorf("bench: chain: a role stopped: %w", context.Cause(gctx))
		}
		if wait == 0 {
			return 0, errNoSignal
		}
		timeout := time.NewTimer(wait)
		defer timeout.Stop()
		for {
			select {
			case a := <-got:
				if a.candle.Equal(closed) {
					return a.at.Sub(start), nil
				}
			case <-timeout.C:
				return 0, errNoSignal
			case <-gctx.Done():
				return 0, fmt.Errorf("bench: chain: a role stopped: %w", context.Cause(gctx))
			}
		}
	}
	// Warm up: the indicators need 50 closed candles (the first jobs fail for want of
	// data), a job loads up to 500 (the worker's default), so the cost of a job grows
	// until then, and the subscription starts asynchronously. Fill the history without
	// waiting, then go on until a signal comes through: the samples see a market in its
	// steady state.
	for range chainHistory {
		if _, err := closeCandle(0); err != nil && !errors.Is(err, errNoSignal) {
			return rep, err
		}
	}
	for warm := 0; ; warm++ {
		if _, err := closeCandle(500 * time.Millisecond); err == nil {
			break
		} else if !errors.Is(err, errNoSignal) {
			return rep, err
		}
		if warm == 40 {
			return rep, errors.New("bench: chain: no signal came through in 40 candles")
		}
	}
	for r := range cfg.Rounds {
		lat := make([]time.Duration, 0, cfg.Samples)
		for range cfg.Samples {
			d, err := closeCandle(10 * time.Second)
			if err != nil {
				return rep, fmt.Errorf("bench: chain: candle %d: %w", minute-1, err)
			}
			lat = append(lat, d)
			time.Sleep(cfg.Gap)
		}
		slices.Sort(lat)
		rep.P50 = append(rep.P50, percentile(lat, 0.5))
		rep.P99 = append(rep.P99, percentile(lat, 0.99))
		if progress != nil {
			fmt.Fprintf(progress, "chain round %d/%d: trade → signal p50 %v p99 %v\n", r+1, cfg.Rounds, round(rep.P50[r]), round(rep.P99[r]))
		}
	}
	if err := finish(); err != nil {
		return rep, fmt.Errorf("bench: chain: %w", err)
	}
	return rep, nil
}

var errNoSignal = errors.New("no signal in time")

// chainHistory is how many candles Chain closes before it measures: more than the
// analysis worker loads by default (500).
const chainHistory = 520

// Markdown renders the rounds' median and spread.
func (r ChainReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Trade closing a 1m candle → ingest → analysis job → worker (default indicators) → update on JetStream → signals role → signal on JetStream → signals.Client handler; in process, one candle at a time after %d candles of history, %d candles per round, %d rounds; median (least–greatest) of the rounds.\n\n",
		chainHistory, r.Samples, r.Rounds)
	pm, pl, ph := medianSpread(r.P50)
	qm, ql, qh := medianSpread(r.P99)
	b.WriteString("| chain | p50 | p99 |\n|---|---:|---:|\n")
	fmt.Fprintf(&b, "| trade → signal delivered | %v (%v–%v) | %v (%v–%v) |\n", round(pm), round(pl), round(ph), round(qm), round(ql), round(qh))
	return b.String()
}
