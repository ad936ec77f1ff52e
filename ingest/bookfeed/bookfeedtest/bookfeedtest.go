// Package bookfeedtest runs a live feed's order books against the test Redis and
// compares them with `tickstash books` on the same capture: the check every exchange's
// live-book tests share.
package bookfeedtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// Book is a line of `tickstash books`: a market's final book.
type Book struct {
	Symbol   market.Symbol `json:"symbol"`
	Sequence int64         `json:"sequence"`
	State    string        `json:"state"`
	Bids     [][2]string   `json:"bids"`
	Asks     [][2]string   `json:"asks"`
}

// Offline replays the captures through the decoders as `tickstash books --depth depth`
// does (0: every level) and returns the final books by symbol.
func Offline(tb testing.TB, depth int, captures ...string) map[market.Symbol]Book {
	tb.Helper()
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), captures, bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		tb.Fatal(err)
	}
	return Parse(tb, out.Bytes())
}

// Parse reads `tickstash books` output: a JSON book per line.
func Parse(tb testing.TB, out []byte) map[market.Symbol]Book {
	tb.Helper()
	books := map[market.Symbol]Book{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var b Book
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			tb.Fatalf("a line of tickstash books: %v: %s", err, sc.Bytes())
		}
		books[b.Symbol] = b
	}
	if len(books) == 0 {
		tb.Fatal("the offline replay wrote no book")
	}
	return books
}

// Store is a book writer and reader on a key prefix of the test's own.
type Store struct {
	Writer *bookstore.Writer
	Reader *bookstore.Reader
}

// NewStore returns a Store keeping depth levels a side, flushing every 10ms, with its
// metrics in reg.
func NewStore(tb testing.TB, depth int, reg prometheus.Registerer) Store {
	tb.Helper()
	rdb := redistest.Client(tb)
	prefix := redistest.Prefix(tb, rdb)
	return Store{
		Writer: bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: depth, Interval: 10 * time.Millisecond}, nil, reg),
		Reader: bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: time.Hour}),
	}
}

// Run runs src (whose books go to s.Writer) and the writer, discarding src's events,
// until stop is called or the test ends.
func (s Store) Run(tb testing.TB, src ingest.Source) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	events := make(chan ingest.Event, 64)
	wg.Add(3)
	go func() { defer wg.Done(); _ = src.Run(ctx, events) }()
	go func() { defer wg.Done(); _ = s.Writer.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-events:
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	tb.Cleanup(stop)
	return stop
}

// WaitSynced waits until every book of want is live in Redis at want's sequence, and
// until also holds (nil: always).
func (s Store) WaitSynced(tb testing.TB, ex market.Exchange, want map[market.Symbol]Book, also func() bool) {
	tb.Helper()
	testenv.WaitFor(tb, "the live books in Redis to reach the offline books' sequences", func() bool {
		if also != nil && !also() {
			return false
		}
		for sym, b := range want {
			e, err := s.Reader.Read(context.Background(), ex, sym)
			if err != nil || e.Stale || e.Sequence != b.Sequence {
				return false
			}
		}
		return true
	})
}

// CheckEqual fails tb for every book of want whose levels in Redis differ.
func (s Store) CheckEqual(tb testing.TB, ex market.Exchange, want map[market.Symbol]Book) {
	tb.Helper()
	for sym, b := range want {
		e, err := s.Reader.Read(context.Background(), ex, sym)
		if err != nil {
			tb.Fatalf("%s %s: %v", ex, sym, err)
		}
		if !slices.Equal(e.Bids, b.Bids) || !slices.Equal(e.Asks, b.Asks) {
			tb.Errorf("%s %s: the live book in Redis differs from `tickstash books`:\nlive bids %v\nwant bids %v\nlive asks %v\nwant asks %v",
				ex, sym, e.Bids, b.Bids, e.Asks, b.Asks)
		}
	}
}
