package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// backfillConfig is the flags of tickstash backfill.
type backfillConfig struct {
	sources         []string
	intervals       string
	since           string
	from, to        string
	restBase        []string
	overwrite       bool
	fromTrades      bool
	candleRetention string
	redisURL        string
	prefix          string
	log             logConfig
}

func cmdBackfill(e env) *ff.Command {
	f := newFlags("backfill", "backfill --source binance:BTCUSDT,ETHUSDT [--intervals 1m,1h] [--since 30d | --from T --to T] [flags]\n\n"+
		"Fetches the candles of markets from the exchanges' REST history (Binance klines,\n"+
		"Coinbase candles, Kraken OHLC) and stores them like live candles: upserted by open\n"+
		"time, with the same retention and TTLs, marked \"src\":\"rest\". An interval an exchange\n"+
		"does not offer is built from a smaller one. Candles already stored (live ones too) are\n"+
		"left alone unless --overwrite, so running it twice stores nothing the second time.\n"+
		"Progress is saved in Redis after every page: after a crash or Ctrl-C, the same command\n"+
		"continues where it stopped. A progress bar with an ETA shows on a terminal; elsewhere\n"+
		"progress is logged. Exchange limits are respected: requests are paced, 429 and 418\n"+
		"answers wait their Retry-After, 5xx answers are retried with backoff.", e)
	var c backfillConfig
	f.List(&c.sources, "source", nil, "markets to backfill, as for ingest: binance:BTCUSDT,ETHUSDT; binanceus:BTCUSD; "+
		"coinbase:BTC-USD (Advanced Trade); coinbase-exchange:BTC-USD; kraken:BTC/USD; repeat the flag for more exchanges")
	f.String(&c.intervals, "intervals", "1m,1h", "candle intervals to backfill, comma-separated, from 1s 1m 3m 5m 15m 30m 1h 4h 1d")
	f.String(&c.since, "since", "", "how far back from now: a number of days (30d), or a duration such as 12h or 90m; default 1d unless --from is set")
	f.String(&c.from, "from", "", "start of the range: RFC 3339 (2024-05-01T00:00:00Z) or a date (2024-05-01, UTC midnight); excludes --since")
	f.String(&c.to, "to", "", "end of the range (exclusive), in the forms of --from; empty means now")
	f.List(&c.restBase, "rest-base-url", nil, "an exchange's REST base URL, exchange=URL (binance, binanceus, coinbase, coinbase-exchange, kraken), "+
		"for proxies and tests; unset exchanges use their public API")
	f.Bool(&c.overwrite, "overwrite", false, "replace candles already stored (live ones too) instead of keeping them")
	f.Bool(&c.fromTrades, "from-trades", false, "build the candles from the exchange's trade history instead of its candles (Binance aggTrades, Kraken Trades): exact, for 1s outside Binance and ranges Kraken keeps no candles for; slower")
	f.String(&c.candleRetention, "candle-retention", "", "per-interval candle retention, as given to ingest (e.g. 1m=72h): candles older than it are not fetched, since the store would trim them at once")
	registerStore(f, &c.redisURL, &c.prefix, "Redis to store the candles in")
	c.log.register(f)
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runBackfill(ctx, &c, e)
	})
}

// backfillMarket is one market named by --source, with the venue that serves it.
type backfillMarket struct {
	venue  history.Venue
	symbol market.Symbol
}

// parseHistoryMarkets turns --source specs into the markets they name and the REST venue
// of each (kind coinbase is Advanced Trade; kraken and kraken-v1 are both kraken).
func parseHistoryMarkets(specs []string, venue func(name string) (history.Venue, error)) ([]backfillMarket, error) {
	var out []backfillMarket
	seen := map[string]bool{}
	for _, spec := range specs {
		kind, list, ok := strings.Cut(strings.TrimSpace(spec), ":")
		kind = strings.ToLower(kind)
		if !ok || strings.TrimSpace(list) == "" {
			return nil, fmt.Errorf("%w: --source %q: want EXCHANGE:MARKET[,MARKET...], e.g. binance:BTCUSDT,ETHUSDT", errUsage, spec)
		}
		name := kind
		if kind == "kraken-v1" {
			name = "kraken"
		}
		if _, known := history.Venues[name]; !known {
			return nil, fmt.Errorf("%w: --source %q: %q has no REST history: want binance, binanceus, coinbase, coinbase-exchange or kraken", errUsage, spec, kind)
		}
		v, err := venue(name)
		if err != nil {
			return nil, err
		}
		for _, item := range strings.Split(list, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			sym, err := historySymbol(name, item)
			if err != nil {
				return nil, fmt.Errorf("%w: --source %q: %v", errUsage, spec, err)
			}
			key := name + ":" + string(sym)
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, backfillMarket{venue: v, symbol: sym})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: name markets with --source, e.g. --source binance:BTCUSDT,ETHUSDT", errUsage)
	}
	return out, nil
}

// historySymbol turns an exchange's market name, as --source takes it, into the
// canonical symbol: Binance's BTCUSDT is BTC-USDT, Kraken's XBT/USD is BTC-USD.
func historySymbol(venue, item string) (market.Symbol, error) {
	switch venue {
	case "binance", "binanceus":
		if !strings.ContainsAny(item, "-/") {
			return binance.SplitSymbol(item)
		}
	case "kraken":
		sym, err := market.ParseSymbol(item)
		if err != nil {
			return "", err
		}
		alias := map[string]string{"XBT": "BTC", "XDG": "DOGE"}
		base, quote := sym.Base(), sym.Quote()
		if a, ok := alias[base]; ok {
			base = a
		}
		if a, ok := alias[quote]; ok {
			quote = a
		}
		return market.NewSymbol(base, quote), nil
	}
	return market.ParseSymbol(item)
}

// parseRESTBaseURLs reads --rest-base-url exchange=URL flags into venue name → URL.
func parseRESTBaseURLs(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		for _, part := range strings.Split(kv, ",") {
			name, raw, ok := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if !ok || name == "" {
				return nil, fmt.Errorf("%w: --rest-base-url %q: want exchange=URL, e.g. binance=http://127.0.0.1:8080", errUsage, part)
			}
			if _, known := history.Venues[name]; !known {
				names := make([]string, 0, len(history.Venues))
				for n := range history.Venues {
					names = append(names, n)
				}
				sort.Strings(names)
				return nil, fmt.Errorf("%w: --rest-base-url %q: unknown exchange %q: want one of %s", errUsage, part, name, strings.Join(names, ", "))
			}
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("%w: --rest-base-url %q: %q is not an http(s) URL", errUsage, part, raw)
			}
			out[name] = strings.TrimRight(raw, "/")
		}
	}
	return out, nil
}

// venues builds history venues on demand, one per name, sharing metrics.
type venues struct {
	base  map[string]string
	m     *history.Metrics
	log   *slog.Logger
	built map[string]history.Venue
	// aggIDs says Binance feeds number aggregate trades (gap repair by aggTrades).
	aggIDs bool
}

func newVenues(base map[string]string, reg prometheus.Registerer, log *slog.Logger) *venues {
	return &venues{base: base, m: history.NewMetrics(reg), log: log, built: map[string]history.Venue{}}
}

func (vs *venues) get(name string) (history.Venue, error) {
	if v, ok := vs.built[name]; ok {
		return v, nil
	}
	v, err := history.NewVenue(name, history.VenueConfig{BaseURL: vs.base[name], BinanceAggTradeIDs: vs.aggIDs,
		Log: vs.log.With("venue", name)}, vs.m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	vs.built[name] = v
	return v, nil
}

// parseSince reads --since: Nd (days) or a Go duration.
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%w: --since %q: want a positive number of days such as 30d, or a duration such as 12h", errUsage, s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: --since %q: want a positive number of days such as 30d, or a duration such as 12h", errUsage, s)
	}
	return d, nil
}

// parseWhen reads --from and --to: RFC 3339 or a date (UTC midnight).
func parseWhen(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: --%s %q: want RFC 3339 (2024-05-01T00:00:00Z) or a date (2024-05-01)", errUsage, flag, s)
}

// backfillRange resolves --since, --from and --to against now.
func (c *backfillConfig) backfillRange(now time.Time) (from, to time.Time, err error) {
	if c.since != "" && c.from != "" {
		return from, to, fmt.Errorf("%w: --since and --from exclude each other", errUsage)
	}
	to = now
	if c.to != "" {
		if to, err = parseWhen("to", c.to); err != nil {
			return from, to, err
		}
		if to.After(now) {
			to = now
		}
	}
	switch {
	case c.from != "":
		if from, err = parseWhen("from", c.from); err != nil {
			return from, to, err
		}
	default:
		since := c.since
		if since == "" {
			since = "1d"
		}
		d, err := parseSince(since)
		if err != nil {
			return from, to, err
		}
		from = to.Add(-d)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("%w: the range %s..%s is empty: --from must be before --to (and before now)", errUsage,
			market.FormatTime(from), market.FormatTime(to))
	}
	return from, to, nil
}

func runBackfill(ctx context.Context, c *backfillConfig, e env) error {
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	ivs, err := market.ParseIntervals(c.intervals)
	if err != nil {
		return fmt.Errorf("%w: --intervals %q: %v", errUsage, c.intervals, err)
	}
	ret, err := parseRetention(c.candleRetention)
	if err != nil {
		return err
	}
	from, to, err := c.backfillRange(time.Now())
	if err != nil {
		return err
	}
	base, err := parseRESTBaseURLs(c.restBase)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	vs := newVenues(base, reg, log)
	markets, err := parseHistoryMarkets(c.sources, vs.get)
	if err != nil {
		return err
	}
	// Everything the flags say is checked before Redis is contacted.
	for _, m := range markets {
		for _, iv := range ivs {
			if c.fromTrades {
				if name := m.venue.Name(); name != "binance" && name != "binanceus" && name != "kraken" {
					return fmt.Errorf("%w: --from-trades: %s pages its trades by id only; use it with binance, binanceus or kraken", errUsage, name)
				}
				continue
			}
			if _, err := history.SourceInterval(m.venue, iv); err != nil {
				return fmt.Errorf("%w: %v (try --from-trades)", errUsage, err)
			}
		}
	}
	redisconn.SetLogger(redisconn.NewLogger(log, redisconn.LogConfig{}))
	rdb, err := redisconn.Connect(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: c.prefix, CandleRetention: ret}, nil)
	bf := history.NewBackfiller(store, rdb, vs.m, history.BackfillConfig{Overwrite: c.overwrite, Log: log})
	bar := newProgressBar(e.stderr, "backfill")
	var total history.Result
	for _, m := range markets {
		for _, iv := range ivs {
			what := fmt.Sprintf("%s %s %s", m.venue.Name(), m.symbol, iv)
			job := history.Job{Venue: m.venue, Symbol: m.symbol, Interval: iv, From: from, To: to, FromTrades: c.fromTrades,
				Progress: backfillProgress(bar, log, what)}
			res, err := bf.Run(ctx, job)
			bar.done()
			if err != nil {
				if ctx.Err() != nil {
					return &exitError{Code: 130, Msg: fmt.Sprintf("interrupted during %s: progress is saved; run the same command again to continue", what)}
				}
				return fmt.Errorf("backfill %s: %w", what, err)
			}
			resumed := ""
			if res.Resumed {
				resumed = " (resumed)"
			}
			fmt.Fprintf(e.stdout, "%s: %d candles fetched, %d stored, %d already there%s\n", what, res.Fetched, res.Stored, res.Present, resumed)
			total.Fetched += res.Fetched
			total.Stored += res.Stored
			total.Present += res.Present
		}
	}
	log.Info("backfill done", "markets", len(markets), "intervals", len(ivs), "fetched", total.Fetched, "stored", total.Stored, "present", total.Present)
	return nil
}

// backfillProgress reports a job's progress: a bar with an ETA on a terminal, otherwise
// a log line at most every few seconds (and at the end).
func backfillProgress(bar *progressBar, log *slog.Logger, what string) func(history.Progress) {
	if bar != nil {
		return func(p history.Progress) { bar.count(what, p.Done, p.Total, "candles", p.ETA) }
	}
	var last time.Time
	return func(p history.Progress) {
		if p.Done != p.Total && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		args := []any{"job", what, "done", p.Done, "total", p.Total, "stored", p.Stored}
		if p.ETA > 0 {
			args = append(args, "eta", p.ETA.Round(time.Second).String())
		}
		log.Info("backfill progress", args...)
	}
}
