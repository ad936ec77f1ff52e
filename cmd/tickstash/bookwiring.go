package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/ingest/bookfeed"
)

// bookConfig is the order-book flags of ingest, run and replay.
type bookConfig struct {
	enabled  bool
	depth    int
	interval time.Duration
}

func (c *bookConfig) register(f *flags) {
	f.Bool(&c.enabled, "books", false, "keep order books: live sources subscribe to their depth channels (Binance depth@100ms synced to REST snapshots, Coinbase Advanced level2 and Exchange level2_batch, Kraken book with checksums); replay rebuilds them from the captures. Books go to Redis (ts:{exchange:SYMBOL}:book) and NATS (ts.book.<exchange>.<symbol>)")
	f.Int(&c.depth, "book-depth", 50, "levels per side of each book written to Redis and NATS (with --books)")
	f.Duration(&c.interval, "book-interval", 100*time.Millisecond, "least time between two writes of a book (with --books): updates in between coalesce, the latest book wins")
}

func (c *bookConfig) validate() error {
	if !c.enabled {
		return nil
	}
	if c.depth < 1 || c.depth > 5000 {
		return fmt.Errorf("%w: --book-depth %d: want 1 to 5000", errUsage, c.depth)
	}
	if c.interval <= 0 {
		return fmt.Errorf("%w: --book-interval %v: want a positive duration", errUsage, c.interval)
	}
	return nil
}

// bookRelay is the Offer the sources are built with, before Redis is connected: it
// forwards to the writer once the process has one.
type bookRelay struct {
	w atomic.Pointer[bookstore.Writer]
}

func (r *bookRelay) Offer(b *book.Book) {
	if w := r.w.Load(); w != nil {
		w.Offer(b)
	}
}

func (r *bookRelay) options() *bookfeed.Options { return &bookfeed.Options{Offer: r.Offer} }

// writer builds the process's book writer (publishing on NATS when connected) and
// points the relay at it.
func (r *bookRelay) writer(p *process, prefix string, c *bookConfig) *bookstore.Writer {
	cfg := bookstore.Config{Prefix: prefix, Depth: c.depth, Interval: c.interval}
	if p.nc != nil {
		cfg.Publisher = p.nc
	}
	w := bookstore.New(p.rdb, cfg, p.log.With("role", "books"), p.reg)
	r.w.Store(w)
	return w
}
