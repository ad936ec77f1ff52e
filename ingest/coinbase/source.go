package coinbase

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

// API selects one of Coinbase's feeds.
type API uint8

// The Coinbase feeds.
const (
	AdvancedTrade API = iota // wss://advanced-trade-ws.coinbase.com
	ExchangeFeed             // wss://ws-feed.exchange.coinbase.com
)

// Default endpoints.
const (
	AdvancedTradeURL = "wss://advanced-trade-ws.coinbase.com"
	ExchangeURL      = "wss://ws-feed.exchange.coinbase.com"
)

// Config configures a Coinbase source.
type Config struct {
	// API is the feed; the zero value is AdvancedTrade.
	API API
	// URL overrides the feed's endpoint (tests). Empty means the default of API.
	URL string
	// Products are product ids, e.g. "BTC-USD". Required.
	Products []string
	// Silence, BackoffMin, BackoffMax and Recorder are passed to wsfeed.Config; zero
	// values mean its defaults. Heartbeats are subscribed, so quiet products do not
	// trip the silence watchdog.
	Silence, BackoffMin, BackoffMax time.Duration
	Recorder                        wsfeed.Recorder
	// Books, if not nil, keeps every product's order book: the level2 channel
	// (level2_batch on the Exchange feed, which needs no authentication), kept
	// by bookfeed (a stale book is resynced by reconnecting, which resubscribes and
	// brings new snapshots). Nil keeps none.
	Books *bookfeed.Options
}

// Source is a live Coinbase feed; it implements ingest.Source.
type Source struct {
	feed *wsfeed.Feed
	err  error
}

var _ ingest.Source = (*Source)(nil)

// New returns a Coinbase source. Configuration errors are reported by Run.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Source {
	s := &Source{}
	if len(cfg.Products) == 0 {
		s.err = errors.New("coinbase: no products configured")
	}
	var dec wsfeed.Decoder
	var subs [][]byte
	var depth wsfeed.DepthHandler
	url := cfg.URL
	switch cfg.API {
	case ExchangeFeed:
		if url == "" {
			url = ExchangeURL
		}
		dec = NewExchangeDecoder()
		channels := []string{"matches", "ticker", "heartbeat"}
		if cfg.Books != nil {
			// level2_batch: level2's messages batched every 50ms, and, unlike level2,
			// open without authentication.
			channels = append(channels, "level2_batch")
			depth = bookfeed.New(bookfeed.Config{Exchange: market.Coinbase, Rules: book.RulesCoinbase,
				NewDecoder: func() bookfeed.Decoder { return NewExchangeDepthDecoder() }, Options: *cfg.Books})
		}
		subs = append(subs, mustJSON(map[string]any{
			"type": "subscribe", "product_ids": cfg.Products, "channels": channels,
		}))
	default:
		if url == "" {
			url = AdvancedTradeURL
		}
		dec = NewAdvancedDecoder()
		// Advanced Trade takes one channel per subscribe message.
		channels := []string{"heartbeats", "market_trades", "ticker"}
		if cfg.Books != nil {
			channels = append(channels, "level2")
			depth = bookfeed.New(bookfeed.Config{Exchange: market.Coinbase, Rules: book.RulesCoinbaseAdvanced,
				NewDecoder: func() bookfeed.Decoder { return NewAdvancedDepthDecoder() }, Options: *cfg.Books})
		}
		for _, ch := range channels {
			subs = append(subs, mustJSON(map[string]any{
				"type": "subscribe", "product_ids": cfg.Products, "channel": ch,
			}))
		}
	}
	s.feed = wsfeed.New(wsfeed.Config{
		URL: url, Decoder: dec, Subscribe: subs, Depth: depth,
		Silence: cfg.Silence, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, Recorder: cfg.Recorder,
	}, log, reg)
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}

// Name returns "coinbase".
func (s *Source) Name() string { return "coinbase" }

// Run streams events until ctx is done (see wsfeed.Feed.Run).
func (s *Source) Run(ctx context.Context, out chan<- ingest.Event) error {
	if s.err != nil {
		return s.err
	}
	return s.feed.Run(ctx, out)
}
