// Package feeds builds ingest sources from the spec strings of `tickstash run --source`
// and `tickstash ingest`:
//
//	binance:BTCUSDT,ETHUSDT       Binance spot (trade + bookTicker streams)
//	binanceus:BTCUSD              Binance.US
//	coinbase:BTC-USD,ETH-USD      Coinbase Advanced Trade
//	coinbase-exchange:BTC-USD     Coinbase Exchange ws-feed
//	kraken:BTC/USD                Kraken v2 ("kraken-v1:XBT/USD" for v1)
//	replay:FILE[,FILE...]         capture files (replay.Config.Speed from Deps)
//
// "synthetic" is not built here: Parse returns ErrSynthetic and the caller builds it.
//
//	src, err := feeds.Parse("binance:BTCUSDT", feeds.Deps{Logger: log, Registerer: reg})
package feeds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/ingest/replay"
	"github.com/tickstash/tickstash/market"
)

// ErrSynthetic is returned by Parse for "synthetic", which the caller builds.
var ErrSynthetic = errors.New("feeds: synthetic source is built by the caller")

// Deps are what sources are built with.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// RecordDir, if not empty, records every raw message of live sources into capture
	// files there (one Writer per source, closed when its Run returns).
	RecordDir string
	// RecordMaxBytes, RecordMaxAge and RecordCompress configure the capture writers;
	// zero values mean capture.WriterConfig's defaults.
	RecordMaxBytes int64
	RecordMaxAge   time.Duration
	RecordCompress bool
	// Speed and Progress configure replay sources (see replay.Config).
	Speed    float64
	Progress func(read, total int64)
	// Books, if not nil, makes live sources keep order books (their depth channels,
	// synced and verified by ingest/bookfeed) and hand them to Books.Offer. Each
	// source gets its exchange's bookfeed.Metrics on Registerer and Logger unless
	// Books sets them. Replay sources keep no books (tickstash replay --books does).
	Books *bookfeed.Options
	// BookDepth is the depth the books are kept at; Kraken subscribes to the smallest
	// of its depths (10, 25, 100, 500, 1000) that holds it. Zero means 100.
	BookDepth int
}

// krakenDepth is the smallest Kraken book depth that holds n levels.
func krakenDepth(n int) int {
	for _, d := range []int{10, 25, 100, 500} {
		if n <= d {
			return d
		}
	}
	return 1000
}

// Parse builds the source a spec names (see the package doc). Errors name the spec
// and say what was expected.
func Parse(spec string, deps Deps) (ingest.Source, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	kind = strings.ToLower(kind)
	if kind == "synthetic" {
		return nil, ErrSynthetic
	}
	var list []string
	for _, s := range strings.Split(arg, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("feeds: source %q: want KIND:ITEM[,ITEM...], e.g. binance:BTCUSDT,ETHUSDT", spec)
	}
	if kind == "replay" {
		return replay.New(replay.Config{Files: list, Speed: deps.Speed, Progress: deps.Progress}, deps.Logger, deps.Registerer), nil
	}
	var ex market.Exchange
	switch kind {
	case "binance":
		ex = market.Binance
	case "binanceus":
		ex = market.BinanceUS
	case "coinbase", "coinbase-exchange":
		ex = market.Coinbase
	case "kraken", "kraken-v1":
		ex = market.Kraken
	default:
		return nil, fmt.Errorf("feeds: source %q: unknown kind %q: want binance, binanceus, coinbase, coinbase-exchange, kraken, kraken-v1, replay or synthetic", spec, kind)
	}
	var w *capture.Writer
	if deps.RecordDir != "" {
		var err error
		w, err = capture.NewWriter(capture.WriterConfig{Dir: deps.RecordDir, Exchange: ex,
			MaxBytes: deps.RecordMaxBytes, MaxAge: deps.RecordMaxAge, Compress: deps.RecordCompress})
		if err != nil {
			return nil, fmt.Errorf("feeds: source %q: %w", spec, err)
		}
	}
	var src ingest.Source
	log, reg := deps.Logger, deps.Registerer
	var books *bookfeed.Options
	if deps.Books != nil {
		o := *deps.Books
		if o.Metrics == nil && reg != nil {
			o.Metrics = bookfeed.NewMetrics(reg, ex)
		}
		if o.Log == nil {
			o.Log = log
		}
		books = &o
	}
	bookDepth := deps.BookDepth
	if bookDepth <= 0 {
		bookDepth = 100
	}
	switch kind {
	case "binance", "binanceus":
		cfg := binance.Config{Exchange: ex, Symbols: list, Books: books}
		if w != nil {
			cfg.Recorder = w
		}
		src = binance.New(cfg, log, reg)
	case "coinbase", "coinbase-exchange":
		cfg := coinbase.Config{Products: list, Books: books}
		if kind == "coinbase-exchange" {
			cfg.API = coinbase.ExchangeFeed
		}
		if w != nil {
			cfg.Recorder = w
		}
		src = coinbase.New(cfg, log, reg)
	case "kraken", "kraken-v1":
		cfg := kraken.Config{Pairs: list, Books: books, BookDepth: krakenDepth(bookDepth)}
		if kind == "kraken-v1" {
			cfg.Version = 1
		}
		if w != nil {
			cfg.Recorder = w
		}
		src = kraken.New(cfg, log, reg)
	}
	if w == nil {
		return src, nil
	}
	return &recording{Source: src, w: w}, nil
}

// recording closes its capture writer when the source stops.
type recording struct {
	ingest.Source
	w *capture.Writer
}

func (r *recording) Run(ctx context.Context, out chan<- ingest.Event) error {
	err := r.Source.Run(ctx, out)
	if cerr := r.w.Close(); err == nil {
		err = cerr
	}
	return err
}
