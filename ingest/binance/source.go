package binance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

// Default combined-stream endpoints.
const (
	URL   = "wss://stream.binance.com:9443/stream"
	USURL = "wss://stream.binance.us:9443/stream"
)

// Config configures a Binance source.
type Config struct {
	// Exchange is market.Binance (the zero value means it) or market.BinanceUS.
	Exchange market.Exchange
	// URL is the combined-stream endpoint, without the query. Empty means URL or
	// USURL by Exchange; tests point it at a local server.
	URL string
	// Symbols are Binance's names, e.g. "BTCUSDT" (any case). Required.
	Symbols []string
	// Streams are the per-symbol streams: "trade", "aggTrade", "bookTicker". Nil means
	// trade and bookTicker. Subscribe to one trade stream only: trade and aggTrade
	// ids are different sequences.
	Streams []string
	// Klines adds a kline_<interval> stream per symbol for each interval. Nil adds none.
	Klines []market.Interval
	// SymbolMap maps native names to canonical symbols (FetchSymbols). Nil splits names
	// with QuoteAssets.
	SymbolMap map[string]market.Symbol
	// MaxAge is when a connection is replaced before Binance's 24 h limit. Zero means
	// 23 h 30 min.
	MaxAge time.Duration
	// Silence, BackoffMin, BackoffMax and Recorder are passed to wsfeed.Config; zero
	// values mean its defaults.
	Silence, BackoffMin, BackoffMax time.Duration
	Recorder                        wsfeed.Recorder
	// Books, if not nil, keeps every market's order book: a <symbol>@depth@100ms
	// stream per market, synced to REST snapshots (bookfeed). Nil keeps none.
	Books *bookfeed.Options
	// RESTURL is the REST base URL the depth snapshots are fetched from
	// (GET <RESTURL>/api/v3/depth?symbol=..&limit=1000). Empty means RESTURLSpot or
	// RESTURLUS by Exchange; tests point it at a local server.
	RESTURL string
	// HTTPClient fetches the snapshots; nil means a client with a 30s timeout.
	HTTPClient *http.Client
}

// Default REST endpoints of the depth snapshots.
const (
	RESTURLSpot = "https://api.binance.com"
	RESTURLUS   = "https://api.binance.us"
)

// Source is a live Binance feed; it implements ingest.Source.
type Source struct {
	name string
	feed *wsfeed.Feed
	err  error
}

var _ ingest.Source = (*Source)(nil)

// New returns a Binance source. Configuration errors are reported by Run.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Source {
	ex := cfg.Exchange
	if ex == "" {
		ex = market.Binance
	}
	base := cfg.URL
	if base == "" {
		base = URL
		if ex == market.BinanceUS {
			base = USURL
		}
	}
	streams := cfg.Streams
	if streams == nil {
		streams = []string{"trade", "bookTicker"}
	}
	for _, iv := range cfg.Klines {
		streams = append(streams, "kline_"+iv.String())
	}
	if cfg.Books != nil {
		streams = append(streams, "depth@100ms")
	}
	var names []string
	for _, sym := range cfg.Symbols {
		for _, st := range streams {
			names = append(names, strings.ToLower(sym)+"@"+st)
		}
	}
	maxAge := cfg.MaxAge
	if maxAge <= 0 {
		maxAge = 23*time.Hour + 30*time.Minute
	}
	s := &Source{name: string(ex)}
	if len(names) == 0 {
		s.err = errors.New("binance: no symbols configured")
	}
	var depth wsfeed.DepthHandler
	if cfg.Books != nil {
		k, err := newKeeper(ex, cfg)
		if err != nil && s.err == nil {
			s.err = err
		}
		depth = k
	}
	s.feed = wsfeed.New(wsfeed.Config{
		Depth:      depth,
		URL:        base + "?streams=" + strings.Join(names, "/"),
		Decoder:    NewDecoder(ex, cfg.SymbolMap),
		Silence:    cfg.Silence,
		MaxAge:     maxAge,
		BackoffMin: cfg.BackoffMin,
		BackoffMax: cfg.BackoffMax,
		Recorder:   cfg.Recorder,
	}, log, reg)
	return s
}

// httpRecorder is a Recorder that also records REST responses (capture.Writer).
type httpRecorder interface {
	HTTP(conn, url string, body []byte, t time.Time) error
}

// newKeeper builds the order-book keeper: snapshots over REST, one decoder per fetch
// (a fetch runs beside the connection's decoder).
func newKeeper(ex market.Exchange, cfg Config) (*bookfeed.Keeper, error) {
	rest := cfg.RESTURL
	if rest == "" {
		rest = RESTURLSpot
		if ex == market.BinanceUS {
			rest = RESTURLUS
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	native := map[market.Symbol]string{}
	var syms []market.Symbol
	for _, n := range cfg.Symbols {
		n = strings.ToUpper(n)
		sym, ok := cfg.SymbolMap[n]
		if !ok {
			var err error
			if sym, err = SplitSymbol(n); err != nil {
				return nil, fmt.Errorf("binance: order book of %s: %w", n, err)
			}
		}
		native[sym] = n
		syms = append(syms, sym)
	}
	return bookfeed.New(bookfeed.Config{
		Exchange:   ex,
		Rules:      book.RulesBinance,
		NewDecoder: func() bookfeed.Decoder { return NewDepthDecoder(ex, cfg.SymbolMap) },
		Snapshot: func(ctx context.Context, sym market.Symbol) (book.Depth, error) {
			d := NewDepthDecoder(ex, cfg.SymbolMap)
			dep, err := d.FetchSnapshot(ctx, client, rest, native[sym], 1000)
			if err != nil {
				return dep, err
			}
			// Recorded as an http line, a session replays its books exactly.
			if rec, ok := cfg.Recorder.(httpRecorder); ok {
				if err := rec.HTTP(strings.ToUpper(string(ex))+".http.0", snapshotURL(rest, native[sym], 1000), d.body, time.Now()); err != nil {
					return book.Depth{}, fmt.Errorf("binance: record the depth snapshot of %s: %w", native[sym], err)
				}
			}
			return dep, nil
		},
		Symbols: syms,
		Options: *cfg.Books,
	}), nil
}

// Name returns "binance" or "binanceus".
func (s *Source) Name() string { return s.name }

// Run streams events until ctx is done (see wsfeed.Feed.Run).
func (s *Source) Run(ctx context.Context, out chan<- ingest.Event) error {
	if s.err != nil {
		return s.err
	}
	return s.feed.Run(ctx, out)
}
