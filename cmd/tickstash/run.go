package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/peterbourgon/ff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/feeds"
	"github.com/tickstash/tickstash/ingest/replay"
	"github.com/tickstash/tickstash/internal/embedded"
	"github.com/tickstash/tickstash/internal/obs"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// serverConfig is how a role finds Redis, NATS and its admin port.
type serverConfig struct {
	redisURL  string
	natsURL   string
	adminAddr string
	prefix    string
	dataDir   string
	log       logConfig
}

func (c *serverConfig) register(f *flags, embeddedDefault bool) {
	redisHelp := "Redis URL"
	natsHelp := "NATS URL, or several separated by commas for a cluster (nats://h1:4222,nats://h2:4222)"
	if embeddedDefault {
		redisHelp = "Redis URL (empty starts an embedded in-memory Redis)"
		natsHelp += "; empty starts an embedded NATS with JetStream"
	}
	registerRedisURL(f, &c.redisURL, "", redisHelp)
	f.String(&c.natsURL, "nats-url", "", natsHelp)
	f.String(&c.adminAddr, "admin-addr", "127.0.0.1:9464", "address of the admin HTTP server: /metrics, /healthz (process alive), /readyz (Redis and NATS reachable); port 0 picks a free one")
	f.String(&c.prefix, "key-prefix", cache.DefaultPrefix, "prefix of every Redis key tickstash writes")
	f.String(&c.dataDir, "data-dir", "", "directory for the embedded NATS's JetStream files; empty means a temporary directory removed at exit")
	c.log.register(f)
}

// ingestConfig is the ingest role's flags, shared by run and ingest.
type ingestConfig struct {
	sources         []string
	intervals       string
	empty           string
	grace           time.Duration
	batchSize       int
	writers         int
	flushInterval   time.Duration
	tradeRetention  time.Duration
	candleRetention string
	synthSymbols    int
	synthRate       float64
	synthSeed       int
	watermark       string
	recordDir       string
	recordMaxBytes  int
	recordMaxAge    time.Duration
	recordCompress  bool
	shardGroup      string
	shardLease      time.Duration
	enqueue         bool
	repairGaps      bool
	restBase        []string
	backfillOnStart bool
	backfillCandles int
	books           bookConfig
	// bookRelay hands the sources' books to the writer (with --books).
	bookRelay *bookRelay
	// embeddedRedis applies the embedded Redis's retention (internal/embedded) where
	// the flags leave it to the default.
	embeddedRedis bool
}

// register registers every ingest flag: sources, recording, aggregation and writing.
func (c *ingestConfig) register(f *flags) {
	c.registerWrite(f)
	f.List(&c.sources, "source", []string{"synthetic"}, "where market data comes from: synthetic (a seeded random market); "+
		"binance:BTCUSDT,ETHUSDT; binanceus:BTCUSD; coinbase:BTC-USD (Advanced Trade); coinbase-exchange:BTC-USD; "+
		"kraken:BTC/USD (v2); kraken-v1:XBT/USD; replay:FILE[,FILE...] (capture files)")
	f.Int(&c.synthSymbols, "synthetic-symbols", 4, "number of markets of the synthetic source (BTC-USD, ETH-USD, SOL-USD, DOGE-USD, ...)")
	f.Float(&c.synthRate, "synthetic-rate", 50, "average trades per second of the synthetic source, across its markets")
	f.Int(&c.synthSeed, "synthetic-seed", 1, "seed of the synthetic source: the same seed gives the same market")
	f.String(&c.watermark, "watermark", "auto", "what closes quiet candles: wall (the clock minus --grace), event (the newest trade time: for replays of old data), or auto (event when every source is a replay)")
	f.String(&c.recordDir, "record", "", "also write every raw message of live sources to capture files in this directory (the format of ../shared/testdata; replay them with tickstash replay)")
	f.Int(&c.recordMaxBytes, "record-max-bytes", 256<<20, "start a new capture file after this many bytes")
	f.Duration(&c.recordMaxAge, "record-max-age", time.Hour, "start a new capture file after this long")
	f.Bool(&c.recordCompress, "record-compress", true, "compress capture files with zstd (.zst)")
	f.Bool(&c.enqueue, "enqueue-jobs", true, "queue an analysis job for every closed candle")
	f.String(&c.shardGroup, "shard-group", "", "share the markets of the sources with every instance started with the same group name: each market is ingested by one instance at a time, through leases in Redis; empty means this instance ingests everything")
	f.Duration(&c.shardLease, "shard-lease", 5*time.Second, "how long a market's lease lasts without renewal: a dead instance's markets move within about this long")
	f.Bool(&c.repairGaps, "repair-gaps", true, "fill trade-id gaps of live exchange feeds (reconnects, dropped messages) from the exchange's REST trade history and rebuild the candles they spoiled, queueing their analysis again; no effect on synthetic and replay sources")
	f.List(&c.restBase, "rest-base-url", nil, "an exchange's REST base URL for gap repair and backfill, exchange=URL (binance, binanceus, coinbase, coinbase-exchange, kraken), for proxies and tests")
	f.Bool(&c.backfillOnStart, "backfill-on-start", true, "on start, fetch from the exchanges' REST history the candles the analysis needs (--backfill-candles per market and interval), then queue one analysis job each; no effect on synthetic and replay sources")
	f.Int(&c.backfillCandles, "backfill-candles", 0, "candles per market and interval that --backfill-on-start fetches; 0 means the analysis worker's --candles (500 for ingest alone)")
}

// registerWrite registers the flags of aggregation and writing, which replay shares.
func (c *ingestConfig) registerWrite(f *flags) {
	f.String(&c.intervals, "intervals", "1m,5m,1h", "candle intervals to build, comma-separated, from 1s 1m 3m 5m 15m 30m 1h 4h 1d")
	f.String(&c.empty, "empty", "skip", "quiet intervals: skip (no candle) or flat (a candle at the previous close with no volume)")
	f.Duration(&c.grace, "grace", 2*time.Second, "how long after its end a candle waits for late trades before it closes")
	f.Int(&c.batchSize, "batch-size", 1000, "records per Redis pipeline")
	f.Int(&c.writers, "writers", 2, "parallel Redis writers (markets are sharded between them)")
	f.Duration(&c.flushInterval, "flush-interval", 100*time.Millisecond, "longest time a record waits before it is written (a trade closing a candle is written at once when a writer is idle)")
	f.Duration(&c.tradeRetention, "trade-retention", 0, "how far back each market's trade stream reaches (and its TTL); 0 means 24h, or 15m (and at most 50000 trades per market) on the embedded Redis")
	c.books.register(f)
	f.String(&c.candleRetention, "candle-retention", "", "per-interval candle retention overriding the defaults, e.g. 1m=72h,1h=2160h (defaults: 1s 6h, 1m 7d, 5m 30d, 1h 365d, 1d 10y; on the embedded Redis 1440 candles: 1m 24h, 1h 60d)")
}

func parseRetention(s string) (map[market.Interval]time.Duration, error) {
	out := map[market.Interval]time.Duration{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		ivs, ds, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%w: --candle-retention %q: want INTERVAL=DURATION, e.g. 1m=72h", errUsage, part)
		}
		iv, err := market.ParseInterval(ivs)
		if err != nil {
			return nil, fmt.Errorf("%w: --candle-retention: %v", errUsage, err)
		}
		d, err := time.ParseDuration(ds)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: --candle-retention %s: %q is not a positive duration such as 72h", errUsage, ivs, ds)
		}
		out[iv] = d
	}
	return out, nil
}

// sourcesFrom builds the sources named by --source, and says whether all of them are
// replays of capture files.
func (c *ingestConfig) sourcesFrom(log *slog.Logger, reg prometheus.Registerer) (_ []ingest.Source, allReplay bool, _ error) {
	var out []ingest.Source
	allReplay = true
	deps := feeds.Deps{Logger: log, Registerer: reg, RecordDir: c.recordDir, RecordMaxBytes: int64(c.recordMaxBytes),
		RecordMaxAge: c.recordMaxAge, RecordCompress: c.recordCompress, BookDepth: c.books.depth}
	if c.books.enabled {
		if c.bookRelay == nil {
			c.bookRelay = &bookRelay{}
		}
		deps.Books = c.bookRelay.options()
	}
	for _, spec := range c.sources {
		src, err := feeds.Parse(spec, deps)
		if errors.Is(err, feeds.ErrSynthetic) {
			src, err = ingest.NewSynthetic(ingest.SyntheticConfig{
				Symbols: c.synthSymbols, Rate: c.synthRate, Seed: uint64(c.synthSeed),
			})
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: --source %q: %v", errUsage, spec, err)
		}
		if _, ok := src.(*replay.Source); !ok {
			allReplay = false
		}
		out = append(out, src)
	}
	if len(out) == 0 {
		return nil, false, fmt.Errorf("%w: no --source given", errUsage)
	}
	return out, allReplay, nil
}

// process holds what a running role has opened, for an ordered shutdown.
type process struct {
	log *slog.Logger
	reg *prometheus.Registry
	rdb redis.UniversalClient
	nc  *nats.Conn
	// ncClosed is closed by the NATS client's last callback.
	ncClosed chan struct{}
	admin    *adminServer
	redis    *embedded.Redis
	nats     *embedded.NATS
	tempDir  string
	// retention is the banner's line on what the embedded Redis keeps, if it runs.
	retention string

	closeOnce sync.Once
	boards    boards // see leaderboards
}

// newProcess builds the logger and the metrics registry from the flags.
func newProcess(sc *serverConfig, e env) (*process, error) {
	log, err := sc.log.logger(e.stderr)
	if err != nil {
		return nil, err
	}
	// go-redis logs dial and pool troubles on its own; through slog they follow
	// --log-format and --log-level, and an outage's repeats are suppressed.
	redisconn.SetLogger(redisconn.NewLogger(log, redisconn.LogConfig{}))
	return &process{log: log, reg: newRegistry()}, nil
}

// open starts embedded servers where allowed and URLs are empty, connects, and starts
// the admin server (unless sc.adminAddr is empty). The banner says where everything is.
// The caller closes p, also when open fails.
func (p *process) open(ctx context.Context, sc *serverConfig, allowEmbedded, needNATS bool, e env) error {
	log := p.log
	var err error
	var banner []string
	if sc.redisURL == "" {
		if !allowEmbedded {
			sc.redisURL = "redis://127.0.0.1:6379/0"
		} else {
			if p.redis, err = embedded.StartRedis("127.0.0.1:0"); err != nil {
				return err
			}
			sc.redisURL = p.redis.URL()
			banner = append(banner, fmt.Sprintf("  Redis  %s  (embedded, in memory: data is lost at exit; set --redis-url for a real server)", sc.redisURL))
			if p.retention != "" {
				banner = append(banner, p.retention)
			}
		}
	}
	if sc.natsURL == "" && needNATS && !allowEmbedded {
		sc.natsURL = "nats://127.0.0.1:4222"
	}
	if sc.natsURL == "" && needNATS && allowEmbedded {
		dir := sc.dataDir
		if dir == "" {
			if p.tempDir, err = os.MkdirTemp("", "tickstash-nats-"); err != nil {
				return fmt.Errorf("embedded nats: temp dir: %w", err)
			}
			dir = p.tempDir
		}
		if p.nats, err = embedded.StartNATS(embedded.NATSConfig{StoreDir: dir}); err != nil {
			return err
		}
		sc.natsURL = p.nats.URL()
		banner = append(banner, fmt.Sprintf("  NATS   %s  (embedded, JetStream in %s; set --nats-url for a real server)", sc.natsURL, dir))
	}
	if p.rdb, err = redisconn.Connect(ctx, sc.redisURL); err != nil {
		return err
	}
	if sc.natsURL != "" {
		p.ncClosed = make(chan struct{})
		p.nc, err = nats.Connect(sc.natsURL, nats.Name("tickstash"), nats.MaxReconnects(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil on a deliberate close
					log.Warn("nats disconnected", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
			nats.ClosedHandler(func(*nats.Conn) { close(p.ncClosed) }))
		if err != nil {
			return fmt.Errorf("nats at %s: %w (is it running? check --nats-url / TICKSTASH_NATS_URL)", sc.natsURL, err)
		}
	}
	if err := obs.RegisterRedis(p.reg, p.rdb); err != nil {
		return err
	}
	if p.nc != nil {
		if err := obs.RegisterNATS(p.reg, p.nc); err != nil {
			return err
		}
	}
	if sc.adminAddr != "" {
		if p.admin, err = startAdmin(sc.adminAddr, p.reg, p.rdb, p.nc, log); err != nil {
			return err
		}
		banner = append(banner, fmt.Sprintf("  Admin  http://%s/metrics  /healthz  /readyz", p.admin.Addr()))
	}
	if p.redis == nil {
		banner = append(banner, "  Redis  "+redisconn.Redact(sc.redisURL))
	}
	if p.nats == nil && sc.natsURL != "" {
		banner = append(banner, "  NATS   "+sc.natsURL)
	}
	fmt.Fprintf(e.stderr, "tickstash %s\n%s\n", versionString(), strings.Join(banner, "\n"))
	return nil
}

// close shuts down in order: NATS drained, Redis closed, admin server, embedded servers.
// It may be called more than once.
func (p *process) close() { p.closeOnce.Do(p.shutdown) }

func (p *process) shutdown() {
	if p.nc != nil {
		if err := p.nc.Drain(); err != nil {
			p.log.Warn("nats drain", "err", err)
			p.nc.Close()
		}
		// Drain is asynchronous: wait for the client's last callback, within reason.
		select {
		case <-p.ncClosed:
		case <-time.After(5 * time.Second):
			p.log.Warn("nats drain did not finish within 5s")
		}
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
	if p.admin != nil {
		p.admin.Close()
	}
	if p.nats != nil {
		p.nats.Close()
	}
	if p.redis != nil {
		p.redis.Close()
	}
	if p.tempDir != "" {
		_ = os.RemoveAll(p.tempDir)
	}
}

// ingestPlan is the ingest role's configuration, checked before anything starts.
type ingestPlan struct {
	sources []ingest.Source
	// sinks hear of closed candles besides the NATS notifier (the analysis queue).
	sinks []ingest.CandleSink
	// units, with shard, replace sources once Redis is connected.
	units []ingest.Unit
	shard *ingest.ShardConfig
	store cache.MarketConfig
	cfg   ingest.IngesterConfig
	// live are the --source specs of live exchange feeds, for gap repair and
	// backfill on start; restBase their REST base URLs by venue.
	live     []string
	restBase map[string]string
	// repair, if set, fills the gaps of live feeds.
	repair ingest.GapRepairer
	// books is set with --books; bookWriter once ingester has built it.
	books      *bookConfig
	bookRelay  *bookRelay
	bookWriter *bookstore.Writer
}

// plan validates the flags and builds the sources, so a mistake is reported before any
// server starts.
func (c *ingestConfig) plan(prefix string, log *slog.Logger, reg prometheus.Registerer) (*ingestPlan, error) {
	// The synthetic source reads 0 as its default; a 0 from the command line is a mistake.
	if c.synthSymbols < 1 || c.synthSymbols > 10000 {
		return nil, fmt.Errorf("%w: --synthetic-symbols %d: want 1 to 10000", errUsage, c.synthSymbols)
	}
	if !(c.synthRate > 0 && c.synthRate <= 1e7) {
		return nil, fmt.Errorf("%w: --synthetic-rate %v: want more than 0 and at most 1e7 trades per second", errUsage, c.synthRate)
	}
	if c.synthSeed < 1 {
		return nil, fmt.Errorf("%w: --synthetic-seed %d: want a positive seed", errUsage, c.synthSeed)
	}
	if c.backfillCandles < 0 || c.backfillCandles > 100000 {
		return nil, fmt.Errorf("%w: --backfill-candles %d: want 0 (the analysis worker's --candles) to 100000", errUsage, c.backfillCandles)
	}
	restBase, err := parseRESTBaseURLs(c.restBase)
	if err != nil {
		return nil, err
	}
	pl, err := c.planSources(prefix, log, reg)
	if err != nil {
		return nil, err
	}
	pl.live = liveSpecs(c.sources)
	pl.restBase = restBase
	return pl, nil
}

// planSources plans the sources: sharded units, or the sources themselves.
func (c *ingestConfig) planSources(prefix string, log *slog.Logger, reg prometheus.Registerer) (*ingestPlan, error) {
	if c.shardGroup != "" {
		units, err := c.unitsFrom(log, reg)
		if err != nil {
			return nil, err
		}
		if c.watermark == "event" {
			return nil, fmt.Errorf("%w: --watermark event does not go with --shard-group (live sources close candles by the clock)", errUsage)
		}
		pl, err := c.planWith(prefix, nil, false)
		if err != nil {
			return nil, err
		}
		pl.units = units
		pl.shard = &ingest.ShardConfig{Group: c.shardGroup, Lease: c.shardLease, Prefix: prefix}
		return pl, nil
	}
	sources, allReplay, err := c.sourcesFrom(log, reg)
	if err != nil {
		return nil, err
	}
	var eventTime bool
	switch c.watermark {
	case "auto":
		eventTime = allReplay
	case "event":
		eventTime = true
	case "wall":
	default:
		return nil, fmt.Errorf("%w: --watermark %q: want auto, wall or event", errUsage, c.watermark)
	}
	return c.planWith(prefix, sources, eventTime)
}

// planWith validates the aggregation and writing flags and plans ingesting sources.
func (c *ingestConfig) planWith(prefix string, sources []ingest.Source, eventTime bool) (*ingestPlan, error) {
	ivs, err := market.ParseIntervals(c.intervals)
	if err != nil {
		return nil, fmt.Errorf("%w: --intervals %q: %v", errUsage, c.intervals, err)
	}
	empty, err := ingest.ParseEmptyMode(c.empty)
	if err != nil {
		return nil, fmt.Errorf("%w: --empty %q: %v", errUsage, c.empty, err)
	}
	ret, err := parseRetention(c.candleRetention)
	if err != nil {
		return nil, err
	}
	if err := c.books.validate(); err != nil {
		return nil, err
	}
	switch {
	case c.batchSize <= 0:
		return nil, fmt.Errorf("%w: --batch-size %d: want a positive number", errUsage, c.batchSize)
	case c.writers <= 0 || c.writers > 64:
		return nil, fmt.Errorf("%w: --writers %d: want 1 to 64", errUsage, c.writers)
	case c.tradeRetention < 0:
		return nil, fmt.Errorf("%w: --trade-retention %v: want a duration not below 0 (0: the default)", errUsage, c.tradeRetention)
	case c.flushInterval <= 0:
		return nil, fmt.Errorf("%w: --flush-interval %v: want a positive duration", errUsage, c.flushInterval)
	case c.grace < 0:
		return nil, fmt.Errorf("%w: --grace %v: want a duration not below 0", errUsage, c.grace)
	}
	store := cache.MarketConfig{Prefix: prefix, TradeRetention: c.tradeRetention, CandleRetention: ret}
	if c.embeddedRedis {
		if store.TradeRetention == 0 {
			store.TradeRetention = embedded.TradeRetention
		}
		store.TradeMaxLen = embedded.TradeMaxLen
		for _, iv := range market.Intervals {
			if _, ok := ret[iv]; !ok {
				ret[iv] = embedded.CandleRetention(iv.Duration())
			}
		}
	}
	var books *bookConfig
	if c.books.enabled {
		books = &c.books
		if c.bookRelay == nil {
			c.bookRelay = &bookRelay{}
		}
	}
	return &ingestPlan{
		books:     books,
		bookRelay: c.bookRelay,
		sources:   sources,
		store:     store,
		cfg: ingest.IngesterConfig{
			Aggregator:         ingest.AggregatorConfig{Intervals: ivs, Grace: c.grace, Empty: empty},
			BatchSize:          c.batchSize,
			Writers:            c.writers,
			FlushInterval:      c.flushInterval,
			EventTimeWatermark: eventTime,
		},
	}, nil
}

// shortDuration writes d without zero minutes and seconds: 15m, 24h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// unitsFrom splits --source specs into one shardable unit per market:
// "binance:A,B" becomes "binance:A" and "binance:B"; synthetic becomes one unit per
// synthetic market. Replays cannot be sharded.
func (c *ingestConfig) unitsFrom(log *slog.Logger, reg prometheus.Registerer) ([]ingest.Unit, error) {
	deps := feeds.Deps{Logger: log, Registerer: reg, RecordDir: c.recordDir, RecordMaxBytes: int64(c.recordMaxBytes),
		RecordMaxAge: c.recordMaxAge, RecordCompress: c.recordCompress, BookDepth: c.books.depth}
	if c.books.enabled {
		if c.bookRelay == nil {
			c.bookRelay = &bookRelay{}
		}
		deps.Books = c.bookRelay.options()
	}
	var units []ingest.Unit
	for _, spec := range c.sources {
		kind, list, _ := strings.Cut(strings.TrimSpace(spec), ":")
		switch kind {
		case "synthetic":
			all, err := ingest.NewSynthetic(ingest.SyntheticConfig{Symbols: c.synthSymbols, Rate: c.synthRate})
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			for _, sym := range all.Symbols() {
				units = append(units, ingest.Unit{Key: "synthetic:" + string(sym), New: func() (ingest.Source, error) {
					return ingest.NewSynthetic(ingest.SyntheticConfig{
						Symbols: c.synthSymbols, Rate: c.synthRate, Seed: uint64(c.synthSeed), Only: []market.Symbol{sym},
					})
				}})
			}
		case "replay":
			return nil, fmt.Errorf("%w: --source %q: replays cannot be sharded; drop --shard-group", errUsage, spec)
		default:
			items := strings.Split(list, ",")
			if list == "" {
				items = nil
			}
			for _, item := range items {
				unit := kind + ":" + strings.TrimSpace(item)
				if _, err := feeds.Parse(unit, feeds.Deps{}); err != nil {
					return nil, fmt.Errorf("%w: --source %q: %v", errUsage, spec, err)
				}
				units = append(units, ingest.Unit{Key: unit, New: func() (ingest.Source, error) { return feeds.Parse(unit, deps) }})
			}
			if len(items) == 0 {
				return nil, fmt.Errorf("%w: --source %q: name the markets, e.g. binance:BTCUSDT,ETHUSDT", errUsage, spec)
			}
		}
	}
	return units, nil
}

// ingester wires the plan to the process's Redis and NATS.
func (pl *ingestPlan) ingester(p *process) (*ingest.Ingester, error) {
	return pl.ingesterCounting(p, nil)
}

// ingesterCounting is ingester with every write also counted by rc (nil: not counted).
func (pl *ingestPlan) ingesterCounting(p *process, rc *recordCounter) (*ingest.Ingester, error) {
	sources := pl.sources
	if pl.shard != nil {
		sh, err := ingest.NewSharded(p.rdb, pl.units, *pl.shard, p.log.With("role", "ingest"), p.reg)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		p.log.Info("sharding markets", "group", pl.shard.Group, "instance", sh.Instance(), "units", len(pl.units))
		sources = []ingest.Source{sh}
	}
	if pl.books != nil {
		pl.bookWriter = pl.bookRelay.writer(p, pl.store.Prefix, pl.books)
	}
	var store ingest.Store = cache.NewMarketStore(p.rdb, pl.store, p.reg)
	if rc != nil {
		rc.store = store
		store = rc
	}
	var sinks ingest.MultiSink
	if p.nc != nil {
		sinks = append(sinks, ingest.NewNATSNotifier(p.nc))
	}
	sinks = append(sinks, pl.sinks...)
	var sink ingest.CandleSink
	if len(sinks) > 0 {
		sink = sinks
	}
	cfg := pl.cfg
	cfg.GapRepair.Repairer = pl.repair
	return ingest.NewIngester(store, sink, sources, cfg, p.log.With("role", "ingest"), p.reg), nil
}

// recordCounter counts what reaches Redis, for the summary of finite runs. It passes
// StateReader through, so counting does not disable resuming.
type recordCounter struct {
	store                               ingest.Store
	trades, duplicates, quotes, candles atomic.Int64
}

func (c *recordCounter) Write(ctx context.Context, b *cache.Batch) (cache.WriteStats, error) {
	st, err := c.store.Write(ctx, b)
	if err == nil {
		c.trades.Add(int64(st.Trades))
		c.duplicates.Add(int64(st.Duplicates))
		c.quotes.Add(int64(len(b.Quotes)))
		c.candles.Add(int64(st.Candles))
	}
	return st, err
}

func (c *recordCounter) Ticker(ctx context.Context, ex market.Exchange, sym market.Symbol) (cache.Ticker, error) {
	return c.store.(ingest.StateReader).Ticker(ctx, ex, sym)
}

func (c *recordCounter) LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error) {
	return c.store.(ingest.StateReader).LastCandles(ctx, ex, sym, iv, n)
}

func cmdRun(e env) *ff.Command {
	f := newFlags("run", "run [flags]\n\n"+
		"Runs every role in one process: ingest (sources → candles → Redis), analyze (indicator\n"+
		"jobs), signals (rules → JetStream) and the HTTP gateway (--http-addr). With --redis-url and --nats-url unset it starts an embedded in-memory Redis and an\n"+
		"embedded NATS server with JetStream, and says where they are.", e)
	var sc serverConfig
	var ic ingestConfig
	var ac analyzeConfig
	var gc signalsConfig
	var gw gatewayConfig
	sc.register(f, true)
	ic.register(f)
	ac.register(f)
	gc.register(f, &ac.contract)
	gw.register(f, "127.0.0.1:8080")
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runRoles(ctx, &sc, roles{ingest: &ic, analyze: &ac, signals: &gc, gateway: &gw}, true, e)
	})
}

func cmdIngest(e env) *ff.Command {
	f := newFlags("ingest", "ingest [flags]\n\n"+
		"Runs the ingest role alone (for scale-out; see --shard-group): sources → candles → Redis,\n"+
		"an analysis job per closed candle, and candle events on NATS when --nats-url is set.", e)
	var sc serverConfig
	var ic ingestConfig
	sc.register(f, false)
	ic.register(f)
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runRoles(ctx, &sc, roles{ingest: &ic}, false, e)
	})
}

// roles says which roles a process runs; nil means not this one.
type roles struct {
	ingest  *ingestConfig
	analyze *analyzeConfig
	signals *signalsConfig
	gateway *gatewayConfig
}

// runRoles runs the chosen roles (and, in run, the embedded servers) until ctx ends,
// then shuts down in order: sources stop and writes flush, in-flight jobs finish or are
// handed back, NATS drains, Redis closes, the admin server stops.
func runRoles(ctx context.Context, sc *serverConfig, rs roles, allowEmbedded bool, e env) error {
	p, err := newProcess(sc, e)
	if err != nil {
		return err
	}
	var plan *ingestPlan
	if rs.ingest != nil {
		rs.ingest.embeddedRedis = allowEmbedded && sc.redisURL == ""
		if plan, err = rs.ingest.plan(sc.prefix, p.log, p.reg); err != nil {
			return err
		}
		if rs.ingest.embeddedRedis {
			p.retention = fmt.Sprintf("  Kept   trades %s (at most %d per market), %d candles per interval (1m: %s)  (embedded Redis: in memory; --trade-retention, --candle-retention to change)",
				shortDuration(plan.store.TradeRetention), plan.store.TradeMaxLen, embedded.CandlesPerKey, shortDuration(embedded.CandleRetention(time.Minute)))
		}
	}
	if rs.analyze != nil {
		if err := rs.analyze.check(); err != nil {
			return err
		}
	}
	if rs.signals != nil {
		if err := rs.signals.check(); err != nil {
			return err
		}
	}
	if rs.gateway != nil && rs.gateway.httpAddr != "" {
		if err := rs.gateway.check(); err != nil {
			return err
		}
	}
	defer p.close()
	needNATS := allowEmbedded || rs.analyze != nil || rs.signals != nil
	if err := p.open(ctx, sc, allowEmbedded, needNATS, e); err != nil {
		return err
	}
	var qcfg analysis.QueueConfig
	if rs.analyze != nil {
		qcfg = rs.analyze.queueConfig(sc.prefix)
	} else {
		qcfg = analysis.QueueConfig{Prefix: sc.prefix}
	}
	queue := analysis.NewQueue(p.rdb, qcfg, p.reg)
	store := cache.NewMarketStore(p.rdb, cache.MarketConfig{Prefix: sc.prefix}, nil) // for reads; ingest has its own, with metrics

	// A role that fails stops the others: a half-running process would look healthy.
	// The roles start only once every one of them is built, so a mistake found while
	// building stops the process before anything runs.
	var roleRuns []func(context.Context) error
	run := func(name string, fn func(context.Context) error) {
		roleRuns = append(roleRuns, func(ctx context.Context) error {
			if err := fn(ctx); err != nil {
				p.log.Error("role stopped, stopping the others", "role", name, "err", err)
				if strings.HasPrefix(err.Error(), name+": ") {
					return err // already names its role
				}
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	if rs.ingest != nil {
		if rs.ingest.enqueue {
			plan.sinks = append(plan.sinks, queue)
		}
		movers, err := moversFeeder(p, sc.prefix, store)
		if err != nil {
			return err
		}
		plan.sinks = append(plan.sinks, movers)
		var vs *venues
		if len(plan.live) > 0 && (rs.ingest.repairGaps || rs.ingest.backfillOnStart) {
			vs = newVenues(plan.restBase, p.reg, p.log.With("role", "ingest"))
		}
		if vs != nil && rs.ingest.repairGaps {
			rp, err := newGapRepairer(vs, cache.NewMarketStore(p.rdb, plan.store, nil), false)
			if err != nil {
				return err
			}
			plan.repair = rp
		}
		ing, err := plan.ingester(p)
		if err != nil {
			return err
		}
		run("ingest", ing.Run)
		if plan.bookWriter != nil {
			run("books", plan.bookWriter.Run)
		}
		if vs != nil && rs.ingest.backfillOnStart {
			n := rs.ingest.backfillCandles
			if n == 0 {
				n = 500
				if rs.analyze != nil {
					n = rs.analyze.candles
				}
			}
			var q *analysis.Queue
			if rs.ingest.enqueue {
				q = queue
			}
			run("backfill-on-start", func(ctx context.Context) error {
				startupBackfill(ctx, p, vs, plan.live, plan.cfg.Aggregator.Intervals, n, plan.store, q)
				return nil
			})
		}
		p.log.Info("ingest started", "sources", rs.ingest.sources, "intervals", rs.ingest.intervals,
			"repair_gaps", plan.repair != nil, "backfill_on_start", vs != nil && rs.ingest.backfillOnStart)
	}
	if rs.analyze != nil {
		w, err := rs.analyze.worker(ctx, p, queue, store)
		if err != nil {
			return err
		}
		run("analyze", w.Run)
		p.log.Info("analyze started", "concurrency", rs.analyze.concurrency)
	}
	if rs.signals != nil {
		role, err := rs.signals.role(ctx, p, sc.prefix, store)
		if err != nil {
			return err
		}
		run("signals", role.Run)
		feed, err := strategyFeeder(p, sc.prefix, rs.signals.stream.SubjectPrefix)
		if err != nil {
			return err
		}
		run("leaderboard", feed)
		p.log.Info("signals started", "strategies", len(rs.signals.loaded))
	}
	if rs.gateway != nil && rs.gateway.httpAddr != "" {
		serve, err := rs.gateway.serve(p, rs.gateway.deps(p, sc.prefix, store, queue), sc.prefix, e)
		if err != nil {
			return err
		}
		run("gateway", serve)
		p.log.Info("gateway started", "addr", rs.gateway.httpAddr)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, fn := range roleRuns {
		g.Go(func() error { return fn(gctx) })
	}
	if err := g.Wait(); err != nil {
		// Not "writes flushed": records may have been lost (the error says how many).
		p.log.Error("shut down with an error", "err", err)
		return err
	}
	p.log.Info("shutting down: sources stopped, writes flushed, jobs finished or handed back")
	return nil
}
