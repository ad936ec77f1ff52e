// Command tickstash-bench measures tickstash against real servers, each benchmark beside
// a reference (redis-benchmark, asynq, go-redis/redis_rate, raw JetStream, a bare
// net/http handler) run in the same process on the same server. It is a binary of its
// own so that those reference libraries stay out of the production binary, tickstash.
// Run `tickstash-bench --help` for the flags; `tickstash-bench --out BENCHMARKS.md`
// regenerates the measured part of BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/peterbourgon/ff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
	"github.com/tickstash/tickstash/internal/cli"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// benchNames lists the benchmarks in the order tickstash-bench with no argument runs
// them.
var benchNames = []string{"ingest", "replay", "queue", "ratelimit", "signals", "gateway", "leaderboard"}

// benchOptions are the flags of tickstash-bench.
type benchOptions struct {
	redisURL, natsURL, intervals, out string
	cpuProfile                        string
	files                             []string
	trades, symbols, writers, batch   int
	goroutines, jobs, rounds          int
	dur, recoveryWait                 time.Duration
}

// register registers every flag; each benchmark reads those it needs.
func (o *benchOptions) register(f *cli.Flags) {
	f.String(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis to measure against (a real server: the reference runs there too)")
	f.String(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "signals: NATS with JetStream to measure against")
	f.String(&o.out, "out", "", "with no benchmark named: also write the summary into this file (between the bench markers)")
	f.String(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmarks run (this process: tickstash and the in-process references) to this file, for go tool pprof")
	f.Int(&o.trades, "trades", 500_000, "ingest: trades to push through")
	f.Int(&o.symbols, "symbols", 16, "ingest: markets of the synthetic source")
	f.Int(&o.writers, "writers", 2, "ingest: parallel Redis writers")
	f.Int(&o.batch, "batch-size", 1000, "ingest: records per pipeline")
	f.String(&o.intervals, "intervals", "1m,5m,1h", "ingest: candle intervals to build")
	f.List(&o.files, "file", nil, "replay: a capture file to replay (default: every capture in ../shared/testdata/captures)")
	f.Int(&o.jobs, "jobs", 20000, "queue: jobs each system runs per round")
	f.Int(&o.rounds, "rounds", 5, "queue: rounds of each system, alternating which runs first; the report gives the median and spread")
	f.Duration(&o.recoveryWait, "recovery-wait", 90*time.Second, "queue: longest wait for a killed worker's job to be done elsewhere (reported as >WAIT); 0 skips the crash-recovery case")
	f.Int(&o.goroutines, "goroutines", 64, "ratelimit: concurrent callers")
	f.Duration(&o.dur, "duration", 3*time.Second, "ratelimit, gateway, leaderboard: how long each case runs")
}

// benchDescriptions says what each benchmark measures, in the order they run.
var benchDescriptions = []struct{ name, what string }{
	{"ingest", "synthetic trades → aggregation → Redis, beside redis-benchmark -P 16 XADD"},
	{"replay", "capture files (--file, repeatable) → decoders → aggregation → Redis, messages/s"},
	{"queue", "analysis jobs/s end to end (enqueue → no-op handler → ack), 4 workers, beside asynq in alternating rounds; then a worker process killed mid-job: time until its job is done elsewhere"},
	{"ratelimit", "limiter checks/s and p50/p99 from 64 goroutines, beside go-redis/redis_rate and a bare EVALSHA"},
	{"signals", "signals/s published and publish-to-subscriber p50/p99, beside raw JetStream async publish of same-size messages; the same at a fixed 1000/s; trade → candle → analysis → signal p50/p99 through the real roles"},
	{"gateway", "authenticated, rate-limited ticker reads/s beside a bare net/http handler, and /redis GET beside a direct go-redis GET"},
	{"leaderboard", "increment + rank per second beside redis-benchmark ZADD"},
}

// Main runs the tickstash-bench command line and returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := env{stdout: stdout, stderr: stderr}
	var o benchOptions
	root := cli.NewFlags("", "[flags] [ingest|replay|queue|ratelimit|signals|gateway|leaderboard]",
		"Measures tickstash against real servers, beside a reference run in the same process on\n"+
			"the same server, and prints a Markdown report to standard output (progress goes to\n"+
			"standard error). Keys are written under a prefix of their own and deleted afterwards.\n"+
			"With no benchmark named, runs them all and prints one summary; --out FILE also puts it\n"+
			"into FILE between the lines <!-- bench:begin --> and <!-- bench:end --> (BENCHMARKS.md).\n"+
			"Flags may come before or after the benchmark's name.")
	o.register(root)
	var subs []*ff.Command
	for _, b := range benchDescriptions {
		f := cli.NewFlags(b.name, b.name+" [flags]", b.what).SetParent(root)
		subs = append(subs, f.Command(b.what, func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unexpected arguments %q", args)
			}
			md, err := runOne(ctx, b.name, &o, e)
			if err != nil {
				return err
			}
			fmt.Fprint(e.stdout, md)
			return nil
		}))
	}
	cmd := root.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return cli.Usagef("unknown benchmark %q: want one of %s", args[0], strings.Join(benchNames, ", "))
		}
		return runAll(ctx, &o, e)
	}, subs...)
	cmd.Name = "tickstash-bench"
	return cli.Run(ctx, "tickstash-bench", cmd, args, stdout, stderr)
}

// check refuses option values no benchmark can run with, before any server is dialled,
// so a usage error is one whatever is running.
func (o *benchOptions) check() error {
	if o.rounds < 1 {
		return fmt.Errorf("%w: --rounds %d: want at least 1", cli.ErrUsage, o.rounds)
	}
	return nil
}

// env is where output goes: real streams in main, buffers in tests.
type env struct {
	stdout, stderr io.Writer
}

// runOne runs the benchmark called name alone.
func runOne(ctx context.Context, name string, o *benchOptions, e env) (string, error) {
	if o.out != "" {
		return "", cli.Usagef("--out goes with running every benchmark")
	}
	if err := o.check(); err != nil {
		return "", err
	}
	rdb, err := redisconn.Connect(ctx, o.redisURL)
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	stop, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return "", err
	}
	defer stop()
	return runBench(ctx, name, o, rdb, e)
}

// startCPUProfile starts writing a CPU profile to path (nothing when path is empty) and
// returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// runAll runs every benchmark and prints (and with --out, writes) the summary.
func runAll(ctx context.Context, o *benchOptions, e env) error {
	if err := o.check(); err != nil {
		return err
	}
	rdb, err := redisconn.Connect(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	stop, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `tickstash-bench` on %s (UTC); %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), bench.DescribeMachine(ctx, rdb).Markdown())
	for _, name := range benchNames {
		fmt.Fprintf(e.stderr, "bench: %s\n", name)
		md, err := runBench(ctx, name, o, rdb, e)
		if err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		b.WriteString(strings.TrimSpace(md) + "\n\n")
	}
	summary := b.String()
	fmt.Fprint(e.stdout, summary)
	if o.out != "" {
		return writeBetweenMarkers(o.out, summary)
	}
	return nil
}

// runBench runs one benchmark and returns its Markdown section.
func runBench(ctx context.Context, name string, o *benchOptions, rdb redis.UniversalClient, e env) (string, error) {
	machine := bench.DescribeMachine(ctx, rdb).Markdown()
	switch name {
	case "ingest":
		ivs, err := market.ParseIntervals(o.intervals)
		if err != nil {
			return "", fmt.Errorf("%w: --intervals: %v", cli.ErrUsage, err)
		}
		rep, err := bench.Ingest(ctx, rdb, bench.IngestConfig{
			Trades: o.trades, Symbols: o.symbols, Writers: o.writers, BatchSize: o.batch, Intervals: ivs,
			RedisAddr: singleAddr(o.redisURL),
		}, e.stderr)
		return rep.Markdown(), err
	case "replay":
		files := o.files
		if len(files) == 0 {
			var err error
			if files, err = filepath.Glob(filepath.Join("..", "shared", "testdata", "captures", "*.jsonl")); err != nil || len(files) == 0 {
				return "", fmt.Errorf("%w: name capture files with --file (none found in ../shared/testdata/captures)", cli.ErrUsage)
			}
		}
		rep, err := bench.Replay(ctx, rdb, files, e.stderr)
		return rep.Markdown(), err
	case "queue":
		wait := o.recoveryWait
		if wait <= 0 {
			wait = -1 // skip
		}
		rep, err := bench.Queue(ctx, rdb, bench.QueueBenchConfig{Jobs: o.jobs, Workers: 4, Rounds: o.rounds,
			RecoveryWait: wait, RedisURL: o.redisURL}, e.stderr)
		return fmt.Sprintf("### bench queue\n\n%s\n\n%s", machine, rep.Markdown()), err
	case "signals":
		nc, err := nats.Connect(o.natsURL, nats.Name("tickstash-bench"))
		if err != nil {
			return "", fmt.Errorf("nats at %s: %w", o.natsURL, err)
		}
		defer nc.Close()
		rep, err := bench.Signals(ctx, nc, bench.SignalsConfig{}, e.stderr)
		if err != nil {
			return "", err
		}
		chain, err := bench.Chain(ctx, rdb, nc, bench.ChainConfig{}, e.stderr)
		return fmt.Sprintf("### bench signals\n\n%s\n\n%s\n%s", machine, rep.Markdown(), chain.Markdown()), err
	case "gateway":
		rep, err := bench.Gateway(ctx, rdb, bench.GatewayConfig{Duration: o.dur}, e.stderr)
		return fmt.Sprintf("### bench gateway\n\n%s\n\n%s", machine, rep.Markdown()), err
	case "leaderboard":
		rep, err := bench.Leaderboard(ctx, rdb, bench.LeaderboardConfig{Duration: o.dur, RedisAddr: singleAddr(o.redisURL)}, e.stderr)
		return rep.Markdown(), err
	default: // "ratelimit"
		rep, err := bench.RateLimit(ctx, rdb, bench.RateLimitConfig{Duration: o.dur, Goroutines: o.goroutines}, e.stderr)
		return fmt.Sprintf("### bench ratelimit\n\n%s\n\n%s", machine, rep.Markdown()), err
	}
}

const (
	benchBegin = "<!-- bench:begin -->"
	benchEnd   = "<!-- bench:end -->"
)

// writeBetweenMarkers replaces what stands between the bench markers of the file at
// path with text, or appends the markers and text when the file has none (creating
// it if need be). Everything else in the file is kept.
func writeBetweenMarkers(path, text string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	block := benchBegin + "\n" + text + benchEnd
	i, j := strings.Index(s, benchBegin), strings.Index(s, benchEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(benchEnd):]
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: unmatched bench markers; keep %s and %s in that order", path, benchBegin, benchEnd)
	default:
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
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
