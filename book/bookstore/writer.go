package bookstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// Publisher sends a core NATS message; *nats.Conn is one.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Config configures a Writer. Every zero value has a working default.
type Config struct {
	// Prefix starts every key; "" means cache.DefaultPrefix.
	Prefix string
	// Depth is the number of levels per side written (--book-depth); zero means 50.
	Depth int
	// Interval is the least time between two writes of a book (--book-interval);
	// zero means 100ms. Updates in between coalesce: the latest book wins.
	Interval time.Duration
	// TTL is the book key's time to live; zero means one minute. A book whose feed
	// stops disappears after it.
	TTL time.Duration
	// Refresh is how often a book that did not change is written again, so readers can
	// tell a quiet market from a dead feed by the snapshot's age; zero means TTL/4.
	Refresh time.Duration
	// TickerTTL is the TTL set on the ticker hash when the best bid/ask is written into
	// it; zero means 24h (cache.MarketConfig's default).
	TickerTTL time.Duration
	// NoTicker leaves the ticker hash alone; false writes the best bid/ask of every live
	// book into it.
	NoTicker bool
	// Publisher, if not nil, receives every snapshot written, on
	// pipeline.BookSubject, after Redis has it.
	Publisher Publisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = cache.DefaultPrefix
	}
	if c.Depth <= 0 {
		c.Depth = 50
	}
	if c.Interval <= 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.TTL <= 0 {
		c.TTL = time.Minute
	}
	if c.Refresh <= 0 {
		c.Refresh = c.TTL / 4
	}
	if c.TickerTTL <= 0 {
		c.TickerTTL = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

type marketKey struct {
	ex  market.Exchange
	sym market.Symbol
}

// slot is the latest copy of one book, taken by Offer.
type slot struct {
	status         book.Status
	pscale, qscale int
	bids, asks     []int64 // price, qty mantissa pairs, best first
	dirty          bool
	written        time.Time
}

// Writer keeps the latest top of every book offered to it and writes it to Redis (and
// NATS) at most once per interval per book: a coalescing writer, so Redis cost is
// bounded by the interval, not by the update rate. Offer is safe for concurrent use
// by any number of feeds; Run flushes.
type Writer struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys cache.Keyspace
	log  *slog.Logger

	mu    sync.Mutex
	slots map[marketKey]*slot

	flushMu sync.Mutex // one flush at a time

	metrics *Metrics
}

// Metrics are a Writer's Prometheus metrics.
type Metrics struct {
	// Writes counts snapshots written to Redis, by exchange:
	// tickstash_book_writes_total{exchange}.
	Writes *prometheus.CounterVec
	// Errors counts failed flushes by target (redis, nats):
	// tickstash_book_write_errors_total{target}.
	Errors *prometheus.CounterVec
	// Publishes counts snapshots published on NATS: tickstash_book_publishes_total{exchange}.
	Publishes *prometheus.CounterVec
	// Stale is the number of books offered that are not live (stale or waiting for a
	// snapshot), as of the last flush: tickstash_books_stale{exchange}.
	Stale *prometheus.GaugeVec
}

// New returns a Writer. Its metrics are registered on reg (nil: not registered):
// tickstash_book_writes_total{exchange}, tickstash_book_write_errors_total,
// tickstash_book_publishes_total{exchange} and tickstash_books_stale{exchange} (books
// offered whose state is not live, as of the last flush).
func New(rdb redis.UniversalClient, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	f := promauto.With(reg)
	return &Writer{
		rdb: rdb, cfg: cfg, keys: cache.NewKeyspace(cfg.Prefix), log: log,
		slots: make(map[marketKey]*slot),
		metrics: &Metrics{
			Writes: f.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_writes_total",
				Help: "Order-book snapshots written to Redis."}, []string{"exchange"}),
			Errors: f.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_write_errors_total",
				Help: "Order-book flushes that failed (Redis or NATS)."}, []string{"target"}),
			Publishes: f.NewCounterVec(prometheus.CounterOpts{Name: "tickstash_book_publishes_total",
				Help: "Order-book snapshots published on NATS."}, []string{"exchange"}),
			Stale: f.NewGaugeVec(prometheus.GaugeOpts{Name: "tickstash_books_stale",
				Help: "Order books that are not live (stale or waiting for a snapshot), as of the last flush."}, []string{"exchange"}),
		},
	}
}

// Metrics returns the writer's metrics.
func (w *Writer) Metrics() *Metrics { return w.metrics }

// Config returns the writer's configuration with its defaults filled in.
func (w *Writer) Config() Config { return w.cfg }

// Offer records the current top of b (Depth levels per side, its status and scales);
// the next flush writes it. It copies what it needs, so the caller keeps using b; it
// does not allocate once a book's slot has grown to the depth. Call it from the
// goroutine that owns b, after applying a message.
func (w *Writer) Offer(b *book.Book) {
	k := marketKey{b.Exchange(), b.Symbol()}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.slots[k]
	if s == nil {
		s = &slot{bids: make([]int64, 0, 2*w.cfg.Depth), asks: make([]int64, 0, 2*w.cfg.Depth)}
		w.slots[k] = s
	}
	s.status = b.Status()
	s.pscale, s.qscale = b.Scales()
	s.bids, s.asks = s.bids[:0], s.asks[:0]
	if s.status.State == book.StateLive {
		b.Levels(book.Bid, w.cfg.Depth, func(p, q int64) bool { s.bids = append(s.bids, p, q); return true })
		b.Levels(book.Ask, w.cfg.Depth, func(p, q int64) bool { s.asks = append(s.asks, p, q); return true })
	}
	s.dirty = true
}

// Run flushes every Interval until ctx is done, then flushes once more (bounded by
// five seconds) so the last books are not lost, and returns nil. A failed flush is
// logged and counted; the books stay dirty and the next tick retries them.
func (w *Writer) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := w.Flush(fctx); err != nil {
				w.log.Warn("order books: last flush failed", "err", err)
			}
			return nil
		case <-t.C:
			if err := w.Flush(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("order books: flush failed; retrying at the next interval", "err", err)
			}
		}
	}
}

type pending struct {
	k    marketKey
	snap pipeline.BookSnapshot
	data []byte
	q    *market.Quote
}

// Flush writes every book offered since its last write, and every book not written for
// Refresh, in one pipeline, then publishes them. Errors name what failed; books whose
// Redis write failed stay dirty.
func (w *Writer) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	now := w.cfg.Now()
	var out []pending
	notLive := map[market.Exchange]float64{}
	w.mu.Lock()
	for k, s := range w.slots {
		if s.status.State != book.StateLive {
			notLive[k.ex]++
		} else if _, ok := notLive[k.ex]; !ok {
			notLive[k.ex] = 0
		}
		if !s.dirty && now.Sub(s.written) < w.cfg.Refresh {
			continue
		}
		p := pending{k: k, snap: w.snapshot(k, s, now)}
		if !w.cfg.NoTicker && len(s.bids) > 0 && len(s.asks) > 0 {
			p.q = &market.Quote{Exchange: k.ex, Symbol: k.sym,
				Bid: decimal.New(s.bids[0], -int32(s.pscale)), BidQty: decimal.New(s.bids[1], -int32(s.qscale)),
				Ask: decimal.New(s.asks[0], -int32(s.pscale)), AskQty: decimal.New(s.asks[1], -int32(s.qscale)),
				Time: s.status.Time}
		}
		s.dirty = false
		s.written = now
		out = append(out, p)
	}
	w.mu.Unlock()
	for ex, n := range notLive {
		w.metrics.Stale.WithLabelValues(string(ex)).Set(n)
	}
	if len(out) == 0 {
		return nil
	}
	pipe := w.rdb.Pipeline()
	for i := range out {
		p := &out[i]
		data, err := pipeline.EncodeBookSnapshot(&p.snap)
		if err != nil {
			return err
		}
		p.data = data
		pipe.Set(ctx, w.keys.Book(p.k.ex, p.k.sym), data, w.cfg.TTL)
		if p.q != nil {
			tk := w.keys.Ticker(p.k.ex, p.k.sym)
			pipe.HSet(ctx, tk, cache.TickerQuoteFields(p.q, now)...)
			pipe.PExpire(ctx, tk, w.cfg.TickerTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		w.metrics.Errors.WithLabelValues("redis").Inc()
		w.redirty(out)
		return fmt.Errorf("bookstore: write %d books to Redis: %w", len(out), err)
	}
	var perr error
	for i := range out {
		p := &out[i]
		w.metrics.Writes.WithLabelValues(string(p.k.ex)).Inc()
		if w.cfg.Publisher == nil {
			continue
		}
		if err := w.cfg.Publisher.Publish(pipeline.BookSubject(p.k.ex, p.k.sym), p.data); err != nil {
			w.metrics.Errors.WithLabelValues("nats").Inc()
			perr = errors.Join(perr, fmt.Errorf("bookstore: publish book %s %s: %w", p.k.ex, p.k.sym, err))
			continue
		}
		w.metrics.Publishes.WithLabelValues(string(p.k.ex)).Inc()
	}
	return perr
}

// redirty marks books whose write failed dirty again, unless a newer offer did.
func (w *Writer) redirty(out []pending) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range out {
		if s := w.slots[p.k]; s != nil {
			s.dirty = true
			s.written = time.Time{}
		}
	}
}

// snapshot builds the published shape of a slot; called with w.mu held.
func (w *Writer) snapshot(k marketKey, s *slot, now time.Time) pipeline.BookSnapshot {
	snap := pipeline.BookSnapshot{
		Exchange: k.ex, Symbol: k.sym, Time: s.status.Time.UTC(), Sequence: s.status.Sequence,
		State: s.status.State.String(), Depth: w.cfg.Depth, Written: now.UTC(),
		Bids: levels(s.bids, s.pscale, s.qscale), Asks: levels(s.asks, s.pscale, s.qscale),
	}
	if s.status.State != book.StateLive {
		snap.Reason = s.status.Reason
	}
	return snap
}

func levels(pairs []int64, pscale, qscale int) [][2]string {
	out := make([][2]string, 0, len(pairs)/2)
	var buf []byte
	for i := 0; i+1 < len(pairs); i += 2 {
		buf = book.AppendDecimal(buf[:0], pairs[i], pscale)
		p := string(buf)
		buf = book.AppendDecimal(buf[:0], pairs[i+1], qscale)
		out = append(out, [2]string{p, string(buf)})
	}
	return out
}
