package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// analysisContract is what the analyze and signals roles must agree on: the analyzer's
// indicators (the columns the strategies may read) and the stream of analysis updates.
// run registers its flags once for both roles.
type analysisContract struct {
	indicators string
	stream     pipeline.AnalysisStream
	maxBytes   int
}

func (c *analysisContract) register(f *flags) {
	f.String(&c.indicators, "indicators", strings.Join(analysis.DefaultIndicators, " "),
		"the default analyzer's indicators, separated by spaces (tickstash indicators --help lists the syntax); "+
			"the signals role refuses strategies reading other columns, so give it the same list")
	f.String(&c.stream.Name, "analysis-stream", pipeline.DefaultAnalysisStream, "name of the JetStream stream carrying analysis updates to the signals role")
	f.String(&c.stream.SubjectPrefix, "analysis-subject-prefix", pipeline.DefaultAnalysisPrefix,
		"analysis updates are published on <prefix>.<exchange>.<symbol>.<interval>")
	f.Int(&c.maxBytes, "analysis-max-bytes", 256<<20,
		"size bound of the analysis update stream (JetStream reserves it on the server's store); the oldest updates go first")
}

// check validates the indicators and returns the columns they compute.
func (c *analysisContract) check() ([]string, error) {
	if c.maxBytes < 0 {
		return nil, fmt.Errorf("%w: --analysis-max-bytes %d: want a positive size (or 0 for 256 MiB)", errUsage, c.maxBytes)
	}
	c.stream.MaxBytes = int64(c.maxBytes) // 0: the stream's default
	var cols []string
	for _, s := range strings.Fields(c.indicators) {
		spec, err := indicator.ParseSpec(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --indicators %q: %v", errUsage, s, err)
		}
		cols = append(cols, spec.Columns()...)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: --indicators lists no indicator", errUsage)
	}
	return cols, nil
}

// analyzeConfig is the analysis role's flags, shared by run and analyze.
type analyzeConfig struct {
	contract      analysisContract
	concurrency   int
	candles       int
	lease         time.Duration
	heartbeat     time.Duration
	maxDeliveries int
	queueMaxLen   int
}

func (c *analyzeConfig) register(f *flags) {
	f.Int(&c.concurrency, "concurrency", 4, "analysis jobs run at once by this worker")
	c.contract.register(f)
	f.Int(&c.candles, "candles", 500, "newest candles a job loads to compute its indicators")
	f.Duration(&c.lease, "job-lease", 3*time.Second, "how long a job may go without its worker's heartbeat before another worker takes it over "+
		"(a killed worker's job completes elsewhere about this long after the kill); every worker of a queue needs the same value")
	f.Duration(&c.heartbeat, "job-heartbeat", time.Second, "how often a worker extends the leases of the jobs it holds; "+
		"shorter than --job-lease, so that a few missed heartbeats, not one, let another worker take a job over")
	f.Int(&c.maxDeliveries, "max-deliveries", 5, "deliveries of one job (first run, retries, takeovers) before it goes to the dead-letter stream")
	f.Int(&c.queueMaxLen, "queue-max-len", 10000, "jobs the queue holds at most; beyond it enqueueing fails (backpressure)")
}

// check validates the flags, so mistakes show before servers start.
func (c *analyzeConfig) check() error {
	if c.concurrency < 1 || c.concurrency > 1024 {
		return fmt.Errorf("%w: --concurrency %d: want 1 to 1024", errUsage, c.concurrency)
	}
	if _, err := c.contract.check(); err != nil {
		return err
	}
	switch {
	case c.candles < 2:
		return fmt.Errorf("%w: --candles %d: want at least 2", errUsage, c.candles)
	case c.lease <= 0:
		return fmt.Errorf("%w: --job-lease %v: want a positive duration", errUsage, c.lease)
	case c.heartbeat <= 0 || c.heartbeat >= c.lease:
		return fmt.Errorf("%w: --job-heartbeat %v: want a positive duration shorter than --job-lease %v (a third of it is a good value)", errUsage, c.heartbeat, c.lease)
	case c.maxDeliveries < 1:
		return fmt.Errorf("%w: --max-deliveries %d: want at least 1", errUsage, c.maxDeliveries)
	case c.queueMaxLen < 1:
		return fmt.Errorf("%w: --queue-max-len %d: want at least 1", errUsage, c.queueMaxLen)
	}
	return nil
}

func (c *analyzeConfig) queueConfig(prefix string) analysis.QueueConfig {
	return analysis.QueueConfig{Prefix: prefix, Lease: c.lease, MaxDeliveries: c.maxDeliveries, MaxLen: c.queueMaxLen}
}

// worker builds the analysis worker over the process's queue, market store and the
// analysis update stream (created or updated here).
func (c *analyzeConfig) worker(ctx context.Context, p *process, q *analysis.Queue, store *cache.MarketStore) (*analysis.Worker, error) {
	pub, err := pipeline.NewAnalysisPublisher(ctx, p.nc, c.contract.stream)
	if err != nil {
		return nil, err
	}
	return analysis.NewWorker(q, store, pub, analysis.WorkerConfig{
		Concurrency: c.concurrency,
		Candles:     c.candles,
		Heartbeat:   c.heartbeat,
		Analyzers:   map[string][]string{"default": strings.Fields(c.contract.indicators)},
	}, p.log.With("role", "analyze"), p.reg), nil
}

func cmdAnalyze(e env) *ff.Command {
	f := newFlags("analyze", "analyze [flags]\n\n"+
		"Runs the analysis worker role alone: takes jobs from the Redis job queue (ingest enqueues\n"+
		"one per closed candle), computes the indicators over the cached candles, stores the\n"+
		"latest values with a TTL and publishes them to the JetStream stream TS_ANALYSIS, subjects\n"+
		"ts.analysis.<exchange>.<symbol>.<interval> (at least once: a job is acknowledged after its update).", e)
	var sc serverConfig
	var ac analyzeConfig
	sc.register(f, false)
	ac.register(f)
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runRoles(ctx, &sc, roles{analyze: &ac}, false, e)
	})
}

// jobsFlags are the flags of the jobs subcommands: where the queue is, and the market of
// a job to submit. All are valid before or after the subcommand's name.
type jobsFlags struct {
	redisURL, prefix                     string
	exchange, symbol, interval, analyzer string
	flags                                *flags
}

// submitOnly are the flags of jobs submit alone.
var submitOnly = []string{"exchange", "symbol", "interval", "analyzer"}

// refuseSubmitFlags refuses submit's flags given to another jobs subcommand, where they
// would do nothing.
func (j *jobsFlags) refuseSubmitFlags(sub string) error {
	for _, name := range submitOnly {
		if j.flags.SetOnCommandLine(name) {
			return fmt.Errorf("%w: --%s is a flag of jobs submit, not of jobs %s", errUsage, name, sub)
		}
	}
	return nil
}

// queue connects to Redis and returns the job queue; the caller closes the client.
func (j *jobsFlags) queue(ctx context.Context) (*analysis.Queue, func(), error) {
	rdb, err := redisconn.Connect(ctx, j.redisURL)
	if err != nil {
		return nil, nil, err
	}
	return analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: j.prefix}, nil), func() { _ = rdb.Close() }, nil
}

func cmdJobs(e env) *ff.Command {
	f := newFlags("jobs", "jobs submit|status|dead|retry [flags]\n\n"+
		"Submits analysis jobs to the Redis job queue, shows their state, lists dead-lettered\n"+
		"jobs and sends them back. The flags below are valid before or after the subcommand;\n"+
		"run 'tickstash jobs <subcommand> --help' for each one's own.", e)
	jf := jobsFlags{flags: f}
	registerStore(f, &jf.redisURL, &jf.prefix, "Redis holding the job queue")
	f.String(&jf.exchange, "exchange", "", "submit: exchange of the market, e.g. binance (required)")
	f.String(&jf.symbol, "symbol", "", "submit: market symbol, e.g. BTC-USDT (required)")
	f.String(&jf.interval, "interval", "1m", "submit: candle interval")
	f.String(&jf.analyzer, "analyzer", "", "submit: analyzer (indicator set); empty means the default")
	return f.Command("", nil, jobsSubmit(f, &jf, e), jobsStatus(f, &jf, e), jobsDead(f, &jf, e), jobsRetry(f, &jf, e))
}

func jobsSubmit(parent *flags, jf *jobsFlags, e env) *ff.Command {
	f := newFlags("jobs submit", "jobs submit --exchange E --symbol S [--interval I] [--analyzer A]\n\n"+
		"Queues an analysis job for one market and interval and prints its id; a job for the\n"+
		"same market, interval and analyzer already waiting absorbs it.", e).SetParent(parent)
	return f.Command("queue an analysis job; prints its id", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q (the market goes in --exchange and --symbol)", errUsage, args)
		}
		ex := market.Exchange(jf.exchange)
		if err := ex.Validate(); err != nil {
			return fmt.Errorf("%w: --exchange %q: %v", errUsage, jf.exchange, err)
		}
		sym, err := market.ParseSymbol(jf.symbol)
		if err != nil {
			return fmt.Errorf("%w: --symbol %q: %v", errUsage, jf.symbol, err)
		}
		iv, err := market.ParseInterval(jf.interval)
		if err != nil {
			return fmt.Errorf("%w: --interval %q: %v", errUsage, jf.interval, err)
		}
		q, done, err := jf.queue(ctx)
		if err != nil {
			return err
		}
		defer done()
		id, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: ex, Symbol: sym, Interval: iv, Analyzer: jf.analyzer})
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, id)
		return nil
	})
}

// oneID returns the one job id of args.
func oneID(jf *jobsFlags, sub string, args []string) (string, error) {
	if err := jf.refuseSubmitFlags(sub); err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", fmt.Errorf("%w: jobs %s takes one job id, got %d arguments", errUsage, sub, len(args))
	}
	return args[0], nil
}

func jobsStatus(parent *flags, jf *jobsFlags, e env) *ff.Command {
	f := newFlags("jobs status", "jobs status ID\n\nPrints the job's state as JSON.", e).SetParent(parent)
	return f.Command("the job's state as JSON", func(ctx context.Context, args []string) error {
		id, err := oneID(jf, "status", args)
		if err != nil {
			return err
		}
		q, done, err := jf.queue(ctx)
		if err != nil {
			return err
		}
		defer done()
		st, err := q.Status(ctx, id)
		if errors.Is(err, analysis.ErrJobNotFound) {
			return fmt.Errorf("job %s: not found (never submitted, or its record expired)", id)
		}
		if err != nil {
			return err
		}
		return json.NewEncoder(e.stdout).Encode(st)
	})
}

func jobsDead(parent *flags, jf *jobsFlags, e env) *ff.Command {
	f := newFlags("jobs dead", "jobs dead [--n 20]\n\nPrints dead-lettered jobs, newest first, as JSON lines.", e).SetParent(parent)
	var n int
	f.Int(&n, "n", 20, "how many to list")
	return f.Command("dead-lettered jobs, newest first, as JSON lines", func(ctx context.Context, args []string) error {
		if err := jf.refuseSubmitFlags("dead"); err != nil {
			return err
		}
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if n < 1 {
			return fmt.Errorf("%w: --n %d: want a positive number", errUsage, n)
		}
		q, done, err := jf.queue(ctx)
		if err != nil {
			return err
		}
		defer done()
		dead, err := q.Dead(ctx, n)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(e.stdout)
		for _, d := range dead {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	})
}

func jobsRetry(parent *flags, jf *jobsFlags, e env) *ff.Command {
	f := newFlags("jobs retry", "jobs retry ID\n\nSends a dead job back to the queue.", e).SetParent(parent)
	return f.Command("send a dead job back to the queue", func(ctx context.Context, args []string) error {
		id, err := oneID(jf, "retry", args)
		if err != nil {
			return err
		}
		q, done, err := jf.queue(ctx)
		if err != nil {
			return err
		}
		defer done()
		if err := q.Retry(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "job %s queued again\n", id)
		return nil
	})
}
