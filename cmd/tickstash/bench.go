package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/bench"
	"github.com/tickstash/tickstash/market"
)

func cmdBench(ctx context.Context, args []string, e env) error {
	f := newFlags("bench", "bench [flags] ingest|replay|queue|ratelimit|signals|gateway|leaderboard\n\n"+
		"Measures tickstash against real servers, beside a reference run in the same process on\n"+
		"the same server, and prints a Markdown report to standard output (progress goes to\n"+
		"standard error). Keys are written under a prefix of their own and deleted afterwards.\n\n"+
		"  ingest     synthetic trades → aggregation → Redis, beside redis-benchmark -P 16 XADD\n"+
		"  replay     capture files (--file, repeatable) → decoders → aggregation → Redis, messages/s\n"+
		"  queue      analysis jobs/s end to end (enqueue → no-op handler → ack), 4 workers, beside asynq\n"+
		"  ratelimit  limiter checks/s and p50/p99 from 64 goroutines, beside go-redis/redis_rate\n"+
		"             and a bare EVALSHA", e)
	var redisURL, natsURL, intervals string
	var files []string
	var trades, symbols, writers, batch, goroutines, jobs int
	var dur time.Duration
	f.String(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis to measure against (a real server: the reference runs there too)")
	f.String(&natsURL, "nats-url", "nats://127.0.0.1:4222", "signals: NATS with JetStream to measure against")
	f.Int(&trades, "trades", 500_000, "ingest: trades to push through")
	f.Int(&symbols, "symbols", 16, "ingest: markets of the synthetic source")
	f.Int(&writers, "writers", 2, "ingest: parallel Redis writers")
	f.Int(&batch, "batch-size", 1000, "ingest: records per pipeline")
	f.String(&intervals, "intervals", "1m,5m,1h", "ingest: candle intervals to build")
	f.List(&files, "file", nil, "replay: a capture file to replay (default: every capture in ../shared/testdata/captures)")
	f.Int(&jobs, "jobs", 20000, "queue: jobs each system runs")
	f.Int(&goroutines, "goroutines", 64, "ratelimit: concurrent callers")
	f.Duration(&dur, "duration", 3*time.Second, "ratelimit, gateway, leaderboard: how long each case runs")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return fmt.Errorf("%w: name one benchmark: ingest, replay, queue, ratelimit, signals, gateway or leaderboard", errUsage)
	}
	rdb, err := cache.Connect(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	switch f.fs.Arg(0) {
	case "ingest":
		ivs, err := market.ParseIntervals(intervals)
		if err != nil {
			return fmt.Errorf("%w: --intervals: %v", errUsage, err)
		}
		rep, err := bench.Ingest(ctx, rdb, bench.IngestConfig{
			Trades: trades, Symbols: symbols, Writers: writers, BatchSize: batch, Intervals: ivs,
			RedisAddr: singleAddr(redisURL),
		}, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, rep.Markdown())
	case "replay":
		if len(files) == 0 {
			if files, err = filepath.Glob(filepath.Join("..", "shared", "testdata", "captures", "*.jsonl")); err != nil || len(files) == 0 {
				return fmt.Errorf("%w: name capture files with --file (none found in ../shared/testdata/captures)", errUsage)
			}
		}
		rep, err := bench.Replay(ctx, rdb, files, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, rep.Markdown())
	case "queue":
		rep, err := bench.Queue(ctx, rdb, bench.QueueBenchConfig{Jobs: jobs, Workers: 4}, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "### bench queue\n\n%s\n\n%s", bench.DescribeMachine(ctx, rdb).Markdown(), rep.Markdown())
	case "signals":
		nc, err := nats.Connect(natsURL, nats.Name("tickstash-bench"))
		if err != nil {
			return fmt.Errorf("nats at %s: %w", natsURL, err)
		}
		defer nc.Close()
		rep, err := bench.Signals(ctx, nc, bench.SignalsConfig{}, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "### bench signals\n\n%s\n\n%s", bench.DescribeMachine(ctx, rdb).Markdown(), rep.Markdown())
	case "gateway":
		rep, err := bench.Gateway(ctx, rdb, bench.GatewayConfig{Duration: dur}, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "### bench gateway\n\n%s\n\n%s", bench.DescribeMachine(ctx, rdb).Markdown(), rep.Markdown())
	case "leaderboard":
		rep, err := bench.Leaderboard(ctx, rdb, bench.LeaderboardConfig{Duration: dur, RedisAddr: singleAddr(redisURL)})
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, rep.Markdown())
	case "ratelimit":
		rep, err := bench.RateLimit(ctx, rdb, bench.RateLimitConfig{Duration: dur, Goroutines: goroutines}, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "### bench ratelimit\n\n%s\n\n%s", bench.DescribeMachine(ctx, rdb).Markdown(), rep.Markdown())
	default:
		return fmt.Errorf("%w: unknown benchmark %q: want ingest, replay, queue, ratelimit, signals, gateway or leaderboard", errUsage, f.fs.Arg(0))
	}
	return nil
}

// singleAddr returns host:port of a single-server URL, or "" for a cluster or sentinel
// URL.
func singleAddr(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Query().Has("addr") || u.Query().Has("master_name") {
		return ""
	}
	host := u.Host
	if !strings.Contains(host, ":") {
		host += ":6379"
	}
	return host
}
