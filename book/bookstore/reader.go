package bookstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// ErrNotFound is wrapped by Read when Redis holds no book of the market: it was never
// kept, or its feed stopped longer than the book TTL ago.
var ErrNotFound = errors.New("bookstore: no order book of this market")

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// Prefix starts every key; "" means cache.DefaultPrefix.
	Prefix string
	// MaxAge is the age of a snapshot beyond which its book counts as stale (its
	// writer stopped or lost Redis); zero means 30s. Keep it above the writer's
	// Refresh.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Reader reads the books a Writer wrote.
type Reader struct {
	rdb  redis.UniversalClient
	keys cache.Keyspace
	cfg  ReaderConfig
}

// NewReader returns a Reader.
func NewReader(rdb redis.UniversalClient, cfg ReaderConfig) *Reader {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reader{rdb: rdb, keys: cache.NewKeyspace(cfg.Prefix), cfg: cfg}
}

// Entry is a stored book with the reader's verdict on it.
type Entry struct {
	pipeline.BookSnapshot
	// Stale is true when the book must not be used as good: its state is not live, or
	// the snapshot is older than MaxAge. Reason says why.
	Stale  bool
	Reason string
	// Age is how long ago the snapshot was written.
	Age time.Duration
}

// Read returns the stored book of a market. Errors: ErrNotFound, a Redis error, or a
// corrupt value (wrapping pipeline.ErrBadMessage). A stale book is not an error: the
// Entry says it is stale and why.
func (r *Reader) Read(ctx context.Context, ex market.Exchange, sym market.Symbol) (Entry, error) {
	data, err := r.rdb.Get(ctx, r.keys.Book(ex, sym)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, fmt.Errorf("%w: %s %s", ErrNotFound, ex, sym)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("bookstore: read book of %s %s: %w", ex, sym, err)
	}
	snap, err := pipeline.DecodeBookSnapshot(data)
	if err != nil {
		return Entry{}, fmt.Errorf("bookstore: book of %s %s is corrupt: %w", ex, sym, err)
	}
	return r.judge(snap), nil
}

// Judge returns the verdict on a snapshot (read from Redis or received on NATS).
func (r *Reader) Judge(snap pipeline.BookSnapshot) Entry { return r.judge(snap) }

func (r *Reader) judge(snap pipeline.BookSnapshot) Entry {
	e := Entry{BookSnapshot: snap, Age: max(r.cfg.Now().Sub(snap.Written), 0)}
	switch {
	case snap.State != pipeline.BookLive:
		e.Stale, e.Reason = true, "book is "+snap.State+": "+snap.Reason
	case e.Age > r.cfg.MaxAge:
		e.Stale, e.Reason = true, fmt.Sprintf("book not written for %s (more than %s): its feed or writer is down",
			e.Age.Round(time.Second), r.cfg.MaxAge)
	}
	return e
}

// Book rebuilds a book from the entry's levels, for the derived figures (spread, mid,
// microprice, imbalance, depth within a band, a walk). It returns a *book.StaleError
// when the entry is stale, and an error wrapping book.ErrNumber for a level that does
// not parse.
func (e *Entry) Book() (*book.Book, error) {
	if e.Stale {
		return nil, &book.StaleError{Exchange: e.Exchange, Symbol: e.Symbol, State: book.StateStale, Reason: e.Reason}
	}
	b := book.New(e.Exchange, e.Symbol)
	for _, side := range [2]struct {
		s  book.Side
		ls [][2]string
	}{{book.Bid, e.Bids}, {book.Ask, e.Asks}} {
		for _, l := range side.ls {
			if err := b.Set(side.s, []byte(l[0]), []byte(l[1])); err != nil {
				return nil, fmt.Errorf("bookstore: book of %s %s: %s level %v: %w", e.Exchange, e.Symbol, side.s, l, err)
			}
		}
	}
	b.MarkLive(e.Sequence, e.Time)
	return b, nil
}
