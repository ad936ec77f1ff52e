package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// analyzeConfig is the analysis role's flags, shared by run and analyze.
type analyzeConfig struct {
	concurrency   int
	indicators    string
	candles       int
	lease         time.Duration
	maxDeliveries int
	queueMaxLen   int
}

func (c *analyzeConfig) register(f *flags) {
	f.Int(&c.concurrency, "concurrency", 4, "analysis jobs run at once by this worker")
	f.String(&c.indicators, "indicators", strings.Join(analysis.DefaultIndicators, " "),
		"the default analyzer's indicators, separated by spaces (tickstash indicators --help lists the syntax)")
	f.Int(&c.candles, "candles", 500, "newest candles a job loads to compute its indicators")
	f.Duration(&c.lease, "job-lease", 30*time.Second, "how long a job may go without its worker's heartbeat before another worker takes it over")
	f.Int(&c.maxDeliveries, "max-deliveries", 5, "deliveries of one job (first run, retries, takeovers) before it goes to the dead-letter stream")
	f.Int(&c.queueMaxLen, "queue-max-len", 10000, "jobs the queue holds at most; beyond it enqueueing fails (backpressure)")
}

// check validates the flags, so mistakes show before servers start.
func (c *analyzeConfig) check() error {
	if c.concurrency < 1 || c.concurrency > 1024 {
		return fmt.Errorf("%w: --concurrency %d: want 1 to 1024", errUsage, c.concurrency)
	}
	for _, s := range strings.Fields(c.indicators) {
		if _, err := indicator.ParseSpec(s); err != nil {
			return fmt.Errorf("%w: --indicators %q: %v", errUsage, s, err)
		}
	}
	if len(strings.Fields(c.indicators)) == 0 {
		return fmt.Errorf("%w: --indicators lists no indicator", errUsage)
	}
	if c.candles < 2 || c.lease <= 0 || c.maxDeliveries < 1 || c.queueMaxLen < 1 {
		return fmt.Errorf("%w: --candles must be at least 2, --job-lease, --max-deliveries and --queue-max-len positive", errUsage)
	}
	return nil
}

func (c *analyzeConfig) queueConfig(prefix string) analysis.QueueConfig {
	return analysis.QueueConfig{Prefix: prefix, Lease: c.lease, MaxDeliveries: c.maxDeliveries, MaxLen: c.queueMaxLen}
}

// worker builds the analysis worker over the process's queue, market store and NATS.
func (c *analyzeConfig) worker(p *process, q *analysis.Queue, store *cache.MarketStore) *analysis.Worker {
	return analysis.NewWorker(q, store, p.nc, analysis.WorkerConfig{
		Concurrency: c.concurrency,
		Candles:     c.candles,
		Analyzers:   map[string][]string{"default": strings.Fields(c.indicators)},
	}, p.log.With("role", "analyze"), p.reg)
}

func cmdAnalyze(ctx context.Context, args []string, e env) error {
	f := newFlags("analyze", "analyze [flags]\n\n"+
		"Runs the analysis worker role alone: takes jobs from the Redis job queue (ingest enqueues\n"+
		"one per closed candle), computes the indicators over the cached candles, stores the\n"+
		"latest values with a TTL and publishes them on NATS ts.analysis.<exchange>.<symbol>.<interval>.", e)
	var sc serverConfig
	var ac analyzeConfig
	sc.register(f, false)
	ac.register(f)
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, f.fs.Args())
	}
	return runRoles(ctx, &sc, roles{analyze: &ac}, false, e)
}

func cmdJobs(ctx context.Context, args []string, e env) error {
	f := newFlags("jobs", "jobs [flags] submit|status ID|dead|retry ID\n\n"+
		"  submit --exchange E --symbol S --interval I [--analyzer A]   queue an analysis job; prints its id\n"+
		"  status ID                                                    the job's state as JSON\n"+
		"  dead [--n 20]                                                dead-lettered jobs, newest first, as JSON lines\n"+
		"  retry ID                                                     send a dead job back to the queue", e)
	var redisURL, prefix, exchange, symbol, interval, analyzer string
	var n int
	f.String(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis holding the job queue")
	f.String(&prefix, "key-prefix", cache.DefaultPrefix, "prefix of every Redis key")
	f.String(&exchange, "exchange", "", "submit: exchange of the market, e.g. binance")
	f.String(&symbol, "symbol", "", "submit: market symbol, e.g. BTC-USDT")
	f.String(&interval, "interval", "1m", "submit: candle interval")
	f.String(&analyzer, "analyzer", "", "submit: analyzer (indicator set); empty means the default")
	f.Int(&n, "n", 20, "dead: how many to list")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() == 0 {
		return fmt.Errorf("%w: name a subcommand: submit, status, dead or retry", errUsage)
	}
	sub, rest := f.fs.Arg(0), f.fs.Args()[1:]
	needID := func() (string, error) {
		if len(rest) != 1 {
			return "", fmt.Errorf("%w: jobs %s takes one job id", errUsage, sub)
		}
		return rest[0], nil
	}
	var spec analysis.JobSpec
	switch sub {
	case "submit":
		sym, err := market.ParseSymbol(symbol)
		if err != nil {
			return fmt.Errorf("%w: --symbol: %v", errUsage, err)
		}
		iv, err := market.ParseInterval(interval)
		if err != nil {
			return fmt.Errorf("%w: --interval: %v", errUsage, err)
		}
		ex := market.Exchange(exchange)
		if err := ex.Validate(); err != nil {
			return fmt.Errorf("%w: --exchange: %v", errUsage, err)
		}
		spec = analysis.JobSpec{Exchange: ex, Symbol: sym, Interval: iv, Analyzer: analyzer}
	case "status", "retry":
		if _, err := needID(); err != nil {
			return err
		}
	case "dead":
		if n < 1 {
			return fmt.Errorf("%w: --n must be positive", errUsage)
		}
	default:
		return fmt.Errorf("%w: unknown subcommand %q: want submit, status, dead or retry", errUsage, sub)
	}
	rdb, err := redisconn.Connect(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	enc := json.NewEncoder(e.stdout)
	switch sub {
	case "submit":
		id, err := q.Enqueue(ctx, spec)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, id)
	case "status":
		st, err := q.Status(ctx, rest[0])
		if errors.Is(err, analysis.ErrJobNotFound) {
			return fmt.Errorf("job %s: not found (never submitted, or its record expired)", rest[0])
		}
		if err != nil {
			return err
		}
		return enc.Encode(st)
	case "dead":
		dead, err := q.Dead(ctx, n)
		if err != nil {
			return err
		}
		for _, d := range dead {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
	case "retry":
		if err := q.Retry(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "job %s queued again\n", rest[0])
	}
	return nil
}
