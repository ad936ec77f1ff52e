// Package bookfeed keeps the order books of a live websocket feed: it sees every
// message of a connection (as a wsfeed.DepthHandler), decodes the depth messages,
// applies them through a book.Syncer by the exchange's rules and hands every changed
// book to a writer (bookstore.Writer.Offer). When a book goes stale it resyncs: for
// Binance it fetches a new REST snapshot (the exchange connector supplies the fetch),
// with a backoff per market and Retry-After honoured; for feeds whose only snapshot
// is the subscription's first message (Coinbase, Kraken) it ends the connection, which
// wsfeed redials after its reconnect backoff, resubscribing.
//
//	k := bookfeed.New(bookfeed.Config{Exchange: market.Kraken, Rules: book.RulesKraken,
//		NewDecoder: func() bookfeed.Decoder { return kraken.NewDepthDecoder(0) },
//		Options: bookfeed.Options{Offer: writer.Offer, Metrics: m}})
//	feed := wsfeed.New(wsfeed.Config{..., Depth: k}, log, reg)
package bookfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// Decoder is what every exchange's depth decoder offers.
type Decoder interface {
	Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error)
}

// SnapshotFunc fetches and decodes a market's REST depth snapshot (Binance). The
// record's levels must stay valid after the call returns. An error that has a
// RetryAfter() time.Duration method (a 429 or 418) is retried after that long.
type SnapshotFunc func(ctx context.Context, sym market.Symbol) (book.Depth, error)

// Options are what the caller of an exchange connector chooses about its books.
type Options struct {
	// Offer receives every book a message changed, after the message is applied; the
	// book is valid only during the call (bookstore.Writer.Offer copies it). Nil keeps
	// the books without storing them.
	Offer func(*book.Book)
	// Metrics, if not nil, counts resyncs, checksum failures, snapshot fetch errors
	// and the update lag (NewMetrics).
	Metrics *Metrics
	// Retry is the backoff between snapshot fetches of a market; zero means 500ms
	// doubling to 30s with half jitter.
	Retry backoff.Policy
	// Log receives resyncs and fetch failures; nil discards.
	Log *slog.Logger
}

// Config configures a Keeper.
type Config struct {
	Exchange market.Exchange
	Rules    book.Rules
	// NewDecoder returns a depth decoder; one per connection. Required.
	NewDecoder func() Decoder
	// Snapshot, if not nil, fetches REST snapshots (Binance): for every market of
	// Symbols after each connect, and for a book that went stale. Nil means a stale
	// book is resynced by reconnecting (resubscribing).
	Snapshot SnapshotFunc
	// Symbols are the markets whose snapshots are fetched after each connect.
	Symbols []market.Symbol
	Options
}

// Keeper keeps the books of one feed; it implements wsfeed.DepthHandler. Handle and
// the snapshot fetches it starts are serialized by a mutex.
type Keeper struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	ctx       context.Context // the connection's
	dec       Decoder
	syncer    *book.Syncer
	recs      []book.Depth
	fetching  map[market.Symbol]bool
	retries   map[market.Symbol]*backoff.Backoff
	syncedAt  map[market.Symbol]time.Time
	resync    string // why the connection must be redialled, "" when not
	connected bool
}

// New returns a Keeper.
func New(cfg Config) *Keeper {
	if cfg.Retry == (backoff.Policy{}) {
		cfg.Retry = backoff.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.5}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, log: log, retries: map[market.Symbol]*backoff.Backoff{}, syncedAt: map[market.Symbol]time.Time{}}
}

// Connected starts the books over for a new connection and, for Binance, fetches a
// snapshot of every market. Fetches of the previous connection stop with its ctx.
func (k *Keeper) Connected(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctx = ctx
	k.dec = k.cfg.NewDecoder()
	k.syncer = book.NewSyncer(k.cfg.Exchange, k.cfg.Rules, book.SyncConfig{Notify: k.notice})
	k.fetching = map[market.Symbol]bool{}
	k.resync = ""
	k.connected = true
	if k.cfg.Offer != nil {
		// Until its snapshot arrives, a reader must see the book as empty, not as the
		// previous connection's.
		for _, sym := range k.cfg.Symbols {
			k.cfg.Offer(book.New(k.cfg.Exchange, sym))
		}
	}
	if k.cfg.Snapshot != nil {
		for _, sym := range k.cfg.Symbols {
			k.fetch(sym, false)
		}
	}
}

// Disconnected makes every book of the ended connection stale ("connection lost") and
// hands it to Offer: no update reaches it until the next connection's snapshot, so it
// must not be served as live meanwhile.
func (k *Keeper) Disconnected() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.connected = false
	if k.syncer == nil {
		return
	}
	for _, b := range k.syncer.Books() {
		b.MarkStale("connection lost; waiting for a new snapshot after the reconnect")
		if k.cfg.Offer != nil {
			k.cfg.Offer(b)
		}
	}
}

// Handle decodes and applies one message. It returns an error — ending the
// connection, which wsfeed redials after its backoff — when a book of a feed without
// REST snapshots went stale; messages that do not decode as depth are ignored (the
// trade decoder counts them).
func (k *Keeper) Handle(msg []byte, recv time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.connected {
		return nil
	}
	var err error
	k.recs, err = k.dec.Decode(k.recs[:0], msg, recv)
	if err != nil || len(k.recs) == 0 {
		return nil
	}
	if m := k.cfg.Metrics; m != nil {
		for i := range k.recs {
			if d := &k.recs[i]; d.Kind == book.Update && !d.Time.IsZero() && d.Time.Before(recv) {
				m.lag.Observe(recv.Sub(d.Time).Seconds())
			}
		}
	}
	k.apply(k.syncer, k.recs)
	if k.resync != "" {
		reason := k.resync
		k.resync = ""
		k.connected = false // until the redial's Connected
		return fmt.Errorf("bookfeed: %s: %s; reconnecting to resubscribe", k.cfg.Exchange, reason)
	}
	return nil
}

func (k *Keeper) apply(s *book.Syncer, recs []book.Depth) {
	if k.cfg.Offer == nil {
		s.Apply(recs)
		return
	}
	s.ApplyVisit(recs, k.cfg.Offer)
}

// notice is the syncer's Notify; it runs with k.mu held.
func (k *Keeper) notice(n book.Notice) {
	switch n.Kind {
	case book.NoticeSynced, book.NoticeResynced:
		k.syncedAt[n.Symbol] = time.Now()
		if n.Kind == book.NoticeResynced {
			k.log.Info("order book resynced", "exchange", n.Exchange, "symbol", n.Symbol, "sequence", n.Sequence)
		}
		return
	case book.NoticeStale:
	default:
		return
	}
	class := ReasonClass(n.Reason)
	if m := k.cfg.Metrics; m != nil {
		m.resyncs.WithLabelValues(string(k.cfg.Exchange), class).Inc()
		if class == "checksum" {
			m.checksums.WithLabelValues(string(k.cfg.Exchange)).Inc()
		}
	}
	k.log.Warn("order book stale; resyncing", "exchange", n.Exchange, "symbol", n.Symbol, "reason", n.Reason)
	if k.cfg.Snapshot != nil {
		k.fetch(n.Symbol, true)
		return
	}
	if k.resync == "" {
		k.resync = n.String()
	}
}

// ReasonClass names the kind of a stale reason for the resync metric: gap, checksum,
// crossed, number or other.
func ReasonClass(reason string) string {
	switch {
	case strings.Contains(reason, "gap"):
		return "gap"
	case strings.HasPrefix(reason, "checksum"):
		return "checksum"
	case strings.HasPrefix(reason, "crossed"):
		return "crossed"
	case strings.Contains(reason, "bad number"):
		return "number"
	}
	return "other"
}

// fetch starts fetching sym's snapshot unless a fetch is under way; a resync waits its
// market's backoff first. Called with k.mu held.
func (k *Keeper) fetch(sym market.Symbol, resync bool) {
	if k.fetching[sym] {
		return
	}
	k.fetching[sym] = true
	b := k.retries[sym]
	if b == nil {
		b = backoff.New(k.cfg.Retry)
		k.retries[sym] = b
	}
	// A book that stayed live a while earns a fresh backoff; a book that keeps going
	// stale right after its snapshot backs off further each time.
	if t, ok := k.syncedAt[sym]; ok && time.Since(t) > 10*k.cfg.Retry.Max {
		b.Reset()
	}
	var delay time.Duration
	if resync {
		delay = b.Next()
	}
	ctx, syncer := k.ctx, k.syncer
	go func() {
		if backoff.Sleep(ctx, delay) != nil {
			return
		}
		for {
			d, err := k.cfg.Snapshot(ctx, sym)
			if err == nil {
				k.mu.Lock()
				if k.syncer == syncer { // not a previous connection's
					delete(k.fetching, sym)
					k.apply(syncer, []book.Depth{d})
				}
				k.mu.Unlock()
				return
			}
			if ctx.Err() != nil {
				return
			}
			wait := b.Next()
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) && ra.RetryAfter() > 0 {
				wait = ra.RetryAfter()
			}
			if m := k.cfg.Metrics; m != nil {
				m.snapshotErrors.WithLabelValues(string(k.cfg.Exchange)).Inc()
			}
			k.log.Warn("order book snapshot failed; retrying", "exchange", k.cfg.Exchange, "symbol", sym, "err", err, "delay", wait)
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
		}
	}()
}

// Metrics are the order-book metrics of live feeds, labelled by exchange.
type Metrics struct {
	resyncs        *prometheus.CounterVec
	checksums      *prometheus.CounterVec
	snapshotErrors *prometheus.CounterVec
	lag            prometheus.Observer
}

// NewMetrics registers the order-book metrics of exchange ex on reg (nil: not
// registered): tickstash_book_resyncs_total{exchange,reason} (a book went stale and a
// resync started; reason gap, checksum, crossed, number or other),
// tickstash_book_checksum_failures_total{exchange},
// tickstash_book_snapshot_errors_total{exchange} (REST snapshot fetches that failed)
// and tickstash_book_update_lag_seconds{exchange} (receive time minus exchange time of
// each update). One registry takes the metrics of several exchanges.
func NewMetrics(reg prometheus.Registerer, ex market.Exchange) *Metrics {
	m := &Metrics{
		resyncs: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_resyncs_total",
			Help: "Order books that went stale and started a resync, by reason (gap, checksum, crossed, number, other)."}, []string{"exchange", "reason"})),
		checksums: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_checksum_failures_total",
			Help: "Order-book checksum mismatches (Kraken)."}, []string{"exchange"})),
		snapshotErrors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_snapshot_errors_total",
			Help: "REST depth snapshot fetches that failed (retried with backoff, or after Retry-After)."}, []string{"exchange"})),
	}
	lag := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tickstash_book_update_lag_seconds",
		Help:    "Receive time minus exchange time of order-book updates.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"exchange"}))
	m.lag = lag.WithLabelValues(string(ex))
	// Show the series at zero before the first event.
	m.checksums.WithLabelValues(string(ex))
	m.snapshotErrors.WithLabelValues(string(ex))
	return m
}

// register registers c, or returns the collector already registered under its name
// (several feeds share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
