package kraken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

// Default endpoints.
const (
	URLv2 = "wss://ws.kraken.com/v2"
	URLv1 = "wss://ws.kraken.com"
)

// Config configures a Kraken source.
type Config struct {
	// Version is the API version, 1 or 2; zero means 2.
	Version int
	// URL overrides the endpoint (tests). Empty means URLv2 or URLv1.
	URL string
	// Pairs are Kraken pair names: "BTC/USD" for v2, "XBT/USD" for v1. Required.
	Pairs []string
	// PingEvery is the interval of application-level pings. Zero means 30 s.
	PingEvery time.Duration
	// Silence, BackoffMin, BackoffMax and Recorder are passed to wsfeed.Config; zero
	// values mean its defaults. Kraken sends heartbeats every second when quiet.
	Silence, BackoffMin, BackoffMax time.Duration
	Recorder                        wsfeed.Recorder
	// Books, if not nil, keeps every pair's order book: the book channel at BookDepth,
	// kept by bookfeed with every update's checksum verified (a stale book is resynced
	// by reconnecting, which resubscribes and brings new snapshots). Nil keeps none.
	Books *bookfeed.Options
	// BookDepth is the subscribed book depth: 10, 25, 100, 500 or 1000; zero means 100.
	BookDepth int
}

// Source is a live Kraken feed; it implements ingest.Source.
type Source struct {
	feed  *wsfeed.Feed
	err   error
	reqID atomic.Int64
}

var _ ingest.Source = (*Source)(nil)

// New returns a Kraken source subscribed to trades and tickers of cfg.Pairs.
// Configuration errors are reported by Run.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Source {
	s := &Source{}
	if len(cfg.Pairs) == 0 {
		s.err = errors.New("kraken: no pairs configured")
	}
	url := cfg.URL
	var subs [][]byte
	var ping func() []byte
	bookDepth := cfg.BookDepth
	if bookDepth == 0 {
		bookDepth = 100
	}
	var depth wsfeed.DepthHandler
	if cfg.Books != nil {
		switch bookDepth {
		case 10, 25, 100, 500, 1000:
		default:
			s.err = fmt.Errorf("kraken: book depth %d: want 10, 25, 100, 500 or 1000", cfg.BookDepth)
		}
		depth = bookfeed.New(bookfeed.Config{Exchange: market.Kraken, Rules: book.RulesKraken,
			NewDecoder: func() bookfeed.Decoder { return NewDepthDecoder(bookDepth) }, Options: *cfg.Books})
	}
	switch cfg.Version {
	case 1:
		if url == "" {
			url = URLv1
		}
		for _, ch := range []string{"trade", "ticker"} {
			subs = append(subs, mustJSON(map[string]any{
				"event": "subscribe", "pair": cfg.Pairs, "subscription": map[string]string{"name": ch},
			}))
		}
		if cfg.Books != nil {
			subs = append(subs, mustJSON(map[string]any{
				"event": "subscribe", "pair": cfg.Pairs, "subscription": map[string]any{"name": "book", "depth": bookDepth},
			}))
		}
		ping = func() []byte {
			return mustJSON(map[string]any{"event": "ping", "reqid": s.reqID.Add(1)})
		}
	case 0, 2:
		if url == "" {
			url = URLv2
		}
		// The trade snapshot (the last 50 trades) after a reconnect fills what was
		// missed; the overlap is dropped as duplicates.
		subs = append(subs,
			mustJSON(map[string]any{"method": "subscribe", "params": map[string]any{
				"channel": "trade", "symbol": cfg.Pairs, "snapshot": true}}),
			mustJSON(map[string]any{"method": "subscribe", "params": map[string]any{
				"channel": "ticker", "symbol": cfg.Pairs}}))
		if cfg.Books != nil {
			subs = append(subs, mustJSON(map[string]any{"method": "subscribe", "params": map[string]any{
				"channel": "book", "symbol": cfg.Pairs, "depth": bookDepth, "snapshot": true}}))
		}
		ping = func() []byte {
			return mustJSON(map[string]any{"method": "ping", "req_id": s.reqID.Add(1)})
		}
	default:
		s.err = errors.New("kraken: Config.Version must be 1 or 2")
	}
	s.feed = wsfeed.New(wsfeed.Config{
		URL: url, Decoder: NewDecoder(), Subscribe: subs, Ping: ping, PingEvery: cfg.PingEvery, Depth: depth,
		Silence: cfg.Silence, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, Recorder: cfg.Recorder,
	}, log, reg)
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// Name returns "kraken".
func (s *Source) Name() string { return "kraken" }

// Run streams events until ctx is done (see wsfeed.Feed.Run).
func (s *Source) Run(ctx context.Context, out chan<- ingest.Event) error {
	if s.err != nil {
		return s.err
	}
	return s.feed.Run(ctx, out)
}
