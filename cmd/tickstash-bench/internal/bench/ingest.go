package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// IngestConfig configures the ingest benchmark. Zero values mean the defaults.
type IngestConfig struct {
	// Trades to push through; 0 means 500 000.
	Trades int
	// Symbols of the synthetic market; 0 means 16.
	Symbols int
	// Writers and BatchSize of the ingester; 0 means its defaults.
	Writers, BatchSize int
	// Intervals to aggregate; nil means 1m, 5m and 1h (what `tickstash run` builds).
	Intervals []market.Interval
	// RedisAddr is host:port for redis-benchmark; "" skips the reference run (e.g. on
	// Redis Cluster, which redis-benchmark's XADD run does not cover).
	RedisAddr string
	// Prefix starts every key the benchmark writes; they are deleted at the end. ""
	// means "tsbench-" and 8 random hex digits.
	Prefix string
	// Rounds of tickstash and the reference, run in turn, each with all Trades (into
	// keys of its own); 0 means 5.
	Rounds int
}

// IngestReport is the outcome of Ingest.
type IngestReport struct {
	Machine Machine
	Config  IngestConfig
	Elapsed time.Duration // of the median round
	// TradesPerS and RawXADDPerS are the medians of the rounds' rates (RawXADDPerS 0
	// when the reference did not run); TradesRounds and RawRounds each round's.
	TradesPerS, RawXADDPerS float64
	TradesRounds, RawRounds []float64
	RawCommand              string
	Candles                 int64 // written per round
}

// Ratios returns each round's tickstash rate over its raw XADD rate (none without a
// reference).
func (r IngestReport) Ratios() []float64 {
	var out []float64
	for i := range min(len(r.TradesRounds), len(r.RawRounds)) {
		if r.RawRounds[i] > 0 {
			out = append(out, r.TradesRounds[i]/r.RawRounds[i])
		}
	}
	return out
}

// Ratio returns the median of the rounds' ratios, or 0 without a reference.
func (r IngestReport) Ratio() float64 {
	m, _, _ := medianSpread(r.Ratios())
	return m
}

// IngestTarget is the ratio the full write path must reach in the median of the
// rounds (issue 16; issue 2 asked 0.3).
const IngestTarget = 0.5

// Markdown renders the report as a table.
func (r IngestReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### bench ingest\n\n%s\n\n", r.Machine.Markdown())
	fmt.Fprintf(&b, "| what | rate | note |\n|---|---|---|\n")
	rate := func(x []float64) string {
		m, lo, hi := medianSpread(x)
		return fmt.Sprintf("%.0f (%.0f–%.0f)", m, lo, hi)
	}
	fmt.Fprintf(&b, "%d rounds, tickstash and the reference in turn; median (least–greatest) of the rounds.\n\n", len(r.TradesRounds))
	fmt.Fprintf(&b, "| what | rate | note |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| tickstash ingest: synthetic → aggregation (%s) → Redis | %s trades/s | %d trades, %d symbols, %d candles written per round |\n",
		intervalList(r.Config.Intervals), rate(r.TradesRounds), r.Config.Trades, r.Config.Symbols, r.Candles)
	if len(r.RawRounds) > 0 {
		verdict := "meets"
		if r.Ratio() < IngestTarget {
			verdict = "MISSES"
		}
		_, lo, hi := medianSpread(r.Ratios())
		fmt.Fprintf(&b, "| raw pipelined XADD (`%s`) | %s XADD/s | reference |\n", r.RawCommand, rate(r.RawRounds))
		fmt.Fprintf(&b, "\nRatio: **%.2f** of raw XADD, median of the rounds (%.2f–%.2f; target ≥ %.1f: %s).\n", r.Ratio(), lo, hi, IngestTarget, verdict)
	} else {
		fmt.Fprintf(&b, "\nNo redis-benchmark reference in this run.\n")
	}
	return b.String()
}

func intervalList(ivs []market.Interval) string {
	s := make([]string, len(ivs))
	for i, iv := range ivs {
		s[i] = iv.String()
	}
	return strings.Join(s, ",")
}

// Ingest pushes synthetic trades through the ingester into Redis under a key prefix of
// its own (deleted afterwards), then runs redis-benchmark's pipelined XADD on the same
// server. Progress goes to progress once a second.
func Ingest(ctx context.Context, rdb redis.UniversalClient, cfg IngestConfig, progress io.Writer) (IngestReport, error) {
	if cfg.Trades <= 0 {
		cfg.Trades = 500_000
	}
	if cfg.Symbols <= 0 {
		cfg.Symbols = 16
	}
	if len(cfg.Intervals) == 0 {
		cfg.Intervals = []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	rep := IngestReport{Machine: DescribeMachine(ctx, rdb), Config: cfg}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = randomPrefix("tsbench")
	}
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, prefix+"*") }()
	var elapsed []time.Duration
	for round := range cfg.Rounds {
		// Keys of the round's own: the same trades again would be refused as repeats.
		rp := prefix + "-r" + strconv.Itoa(round+1)
		d, candles, err := ingestRound(ctx, rdb, cfg, rp, progress)
		if err != nil {
			return rep, err
		}
		_ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, rp+"*")
		rep.Candles = candles
		elapsed = append(elapsed, d)
		rep.TradesRounds = append(rep.TradesRounds, float64(cfg.Trades)/d.Seconds())
		line := fmt.Sprintf("round %d/%d: tickstash %.0f trades/s", round+1, cfg.Rounds, rep.TradesRounds[round])
		if cfg.RedisAddr != "" {
			raw, cmd, err := redisBenchmarkXADD(ctx, cfg.RedisAddr, rp+":xadd", cfg.Trades)
			if err != nil {
				return rep, err
			}
			_ = rdb.Unlink(context.WithoutCancel(ctx), rp+":xadd").Err()
			rep.RawRounds, rep.RawCommand = append(rep.RawRounds, raw), cmd
			line += fmt.Sprintf(", raw XADD %.0f/s, ratio %.2f", raw, rep.TradesRounds[round]/raw)
		}
		if progress != nil {
			fmt.Fprintln(progress, line)
		}
	}
	rep.TradesPerS, _, _ = medianSpread(rep.TradesRounds)
	rep.RawXADDPerS, _, _ = medianSpread(rep.RawRounds)
	rep.Elapsed, _, _ = medianSpread(elapsed)
	return rep, nil
}

// ingestRound pushes cfg.Trades synthetic trades through an ingester into Redis under
// prefix and returns the time it took and the candles written.
func ingestRound(ctx context.Context, rdb redis.UniversalClient, cfg IngestConfig, prefix string, progress io.Writer) (time.Duration, int64, error) {
	// Trades spaced as a busy market, ending about now.
	const rate = 20_000.0
	start := time.Now().Add(-time.Duration(float64(cfg.Trades) / rate * float64(time.Second)))
	src, err := ingest.NewSynthetic(ingest.SyntheticConfig{Symbols: cfg.Symbols, Rate: rate, MaxSpeed: true, Start: start, Limit: int64(cfg.Trades)})
	if err != nil {
		return 0, 0, err
	}
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	counting := &countingStore{store: store}
	g := ingest.NewIngester(counting, nil, []ingest.Source{src}, ingest.IngesterConfig{
		Aggregator: ingest.AggregatorConfig{Intervals: cfg.Intervals},
		Writers:    cfg.Writers, BatchSize: cfg.BatchSize, EventTimeWatermark: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())

	stop := reportProgress(progress, "ingest", int64(cfg.Trades), counting.trades.Load)
	t0 := time.Now()
	err = g.Run(ctx)
	elapsed := time.Since(t0)
	stop()
	if err != nil {
		return 0, 0, err
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if n := counting.trades.Load(); n != int64(cfg.Trades) {
		return 0, 0, fmt.Errorf("bench: %d of %d trades written", n, cfg.Trades)
	}
	return elapsed, counting.candles.Load(), nil
}

// countingStore counts what a store wrote.
type countingStore struct {
	store                    ingest.Store
	trades, candles, records atomic.Int64
}

func (c *countingStore) Write(ctx context.Context, b *cache.Batch) (cache.WriteStats, error) {
	st, err := c.store.Write(ctx, b)
	if err == nil {
		c.trades.Add(int64(st.Trades + st.Duplicates))
		c.candles.Add(int64(st.Candles))
		c.records.Add(int64(b.Len()))
	}
	return st, err
}

// redisBenchmarkXADD runs redis-benchmark with 16-command pipelines of an XADD shaped
// like tickstash's trade entries, and returns its rate.
func redisBenchmarkXADD(ctx context.Context, addr, key string, n int) (float64, string, error) {
	return redisBenchmark(ctx, addr, []string{"-P", "16", "-n", strconv.Itoa(n)},
		"XADD", key, "*", "id", "123456789", "p", "95000.01", "q", "0.01234", "s", "buy",
		"t", "1767225601123456000", "r", "1767225601124456000")
}

// reportProgress prints done/total (or done alone when total is 0) once a second until
// stop is called.
func reportProgress(w io.Writer, what string, total int64, done func() int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				n := done()
				if total > 0 {
					fmt.Fprintf(w, "bench %s: %d/%d (%.0f%%), %.0f/s\n", what, n, total,
						100*float64(n)/float64(total), float64(n)/time.Since(start).Seconds())
				} else {
					fmt.Fprintf(w, "bench %s: %d, %.0f/s\n", what, n, float64(n)/time.Since(start).Seconds())
				}
			}
		}
	}()
	return func() { close(quit); <-finished }
}

func randomPrefix(base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return base + "-" + hex.EncodeToString(b[:])
}
