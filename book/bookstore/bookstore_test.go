package bookstore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const captures = "../../../shared/testdata/captures/"

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func liveBook(t *testing.T, levels ...[3]string) *book.Book {
	t.Helper()
	b := book.New(market.Kraken, "BTC-USD")
	for _, l := range levels {
		s := book.Bid
		if l[0] == "ask" {
			s = book.Ask
		}
		if err := b.Set(s, []byte(l[1]), []byte(l[2])); err != nil {
			t.Fatal(err)
		}
	}
	b.MarkLive(42, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	return b
}

func TestWriteReadTickerTTL(t *testing.T) {
	rdb := redistest.Client(t)
	testWriteRead(t, rdb)
}

// TestOnCluster runs the writer and reader on a 3-master Redis Cluster: the book key
// and the ticker share the market's hash tag, so the pipeline works there too.
func TestOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rdb, err := redisconn.Open(redistest.StartCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	testWriteRead(t, rdb)
}

func testWriteRead(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	prefix := redistest.Prefix(t, rdb)
	clk := &clock{t: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: 2, TTL: 30 * time.Second, Now: clk.Now}, nil, reg)
	b := liveBook(t,
		[3]string{"bid", "100.50", "1.5"}, [3]string{"bid", "100.4", "2"}, [3]string{"bid", "100.3", "7"},
		[3]string{"ask", "100.6", "0.25000"}, [3]string{"ask", "100.7", "3"})
	w.Offer(b)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, Now: clk.Now})
	e, err := r.Read(ctx, market.Kraken, "BTC-USD")
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.BookSnapshot{Exchange: market.Kraken, Symbol: "BTC-USD",
		Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Sequence: 42, State: "live", Depth: 2,
		Bids:    [][2]string{{"100.5", "1.5"}, {"100.4", "2"}},
		Asks:    [][2]string{{"100.6", "0.25"}, {"100.7", "3"}},
		Written: clk.t}
	if diff := cmp.Diff(want, e.BookSnapshot); diff != "" {
		t.Errorf("stored book (-want +got):\n%s", diff)
	}
	if e.Stale {
		t.Errorf("fresh live book read as stale: %s", e.Reason)
	}
	keys := cache.NewKeyspace(prefix)
	if ttl := rdb.PTTL(ctx, keys.Book(market.Kraken, "BTC-USD")).Val(); ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("book key TTL %v, want (0, 30s]", ttl)
	}
	if ttl := rdb.PTTL(ctx, keys.Ticker(market.Kraken, "BTC-USD")).Val(); ttl <= 0 {
		t.Errorf("ticker TTL %v, want one", ttl)
	}
	tk, err := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil).Ticker(ctx, market.Kraken, "BTC-USD")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Bid.String() != "100.5" || tk.Ask.String() != "100.6" || tk.AskQty.String() != "0.25" || !tk.QuoteTime.Equal(want.Time) {
		t.Errorf("ticker quote = %s×%s / %s×%s at %v, want the book's touch", tk.Bid, tk.BidQty, tk.Ask, tk.AskQty, tk.QuoteTime)
	}
	got, err := e.Book()
	if err != nil {
		t.Fatal(err)
	}
	if mid, _ := got.Mid(); mid.String() != "100.55" {
		t.Errorf("mid of the rebuilt book = %s, want 100.55", mid)
	}
}

func TestCoalescesLatestWinsAndPublishes(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The subject carries the market; a test-unique symbol keeps parallel runs apart.
	sym := market.Symbol("T" + strings.ToUpper(strings.TrimPrefix(prefix, "tt-")) + "-USD")
	sub, err := nc.SubscribeSync(pipeline.BookSubject(market.Kraken, sym))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Refresh: 10 * time.Second, Publisher: nc, Now: clk.Now}, nil, reg)
	b := book.New(market.Kraken, sym)
	for i, p := range []string{"10", "11", "12"} {
		if err := b.Set(book.Bid, []byte(p), []byte("1")); err != nil {
			t.Fatal(err)
		}
		b.MarkLive(int64(i+1), clk.t)
		w.Offer(b)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(w.Metrics().Writes.WithLabelValues("kraken")); n != 1 {
		t.Errorf("three offers between flushes wrote %v times, want 1", n)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no snapshot published: %v", err)
	}
	snap, err := pipeline.DecodeBookSnapshot(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sequence != 3 || len(snap.Bids) != 3 || snap.Bids[0][0] != "12" {
		t.Errorf("published %+v, want the latest book (sequence 3, best bid 12)", snap)
	}
	stored, _ := rdb.Get(ctx, cache.NewKeyspace(prefix).Book(market.Kraken, sym)).Bytes()
	if !bytes.Equal(stored, msg.Data) {
		t.Errorf("NATS and Redis differ:\n%s\n%s", msg.Data, stored)
	}

	// Nothing changed and the refresh is not due: no write.
	clk.t = clk.t.Add(5 * time.Second)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(w.Metrics().Writes.WithLabelValues("kraken")); n != 1 {
		t.Errorf("an unchanged book was rewritten before its refresh: %v writes", n)
	}
	// The refresh is due: the quiet book is written again, so it does not age out.
	clk.t = clk.t.Add(5 * time.Second)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(w.Metrics().Writes.WithLabelValues("kraken")); n != 2 {
		t.Errorf("a quiet book was not refreshed: %v writes, want 2", n)
	}
}

func TestStaleBookAndAge(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	clk := &clock{t: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Now: clk.Now}, nil, reg)
	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: 10 * time.Second, Now: clk.Now})

	if _, err := r.Read(ctx, market.Kraken, "BTC-USD"); !errors.Is(err, bookstore.ErrNotFound) {
		t.Fatalf("read of a book never written: %v, want ErrNotFound", err)
	}

	b := liveBook(t, [3]string{"bid", "1", "1"}, [3]string{"ask", "2", "1"})
	b.MarkStale("checksum mismatch: test")
	w.Offer(b)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(w.Metrics().Stale.WithLabelValues("kraken")); n != 1 {
		t.Errorf("stale books gauge = %v, want 1", n)
	}
	e, err := r.Read(ctx, market.Kraken, "BTC-USD")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Stale || !strings.Contains(e.Reason, "checksum mismatch: test") || len(e.Bids)+len(e.Asks) != 0 {
		t.Errorf("stale book read as stale=%v reason=%q with %d levels; want stale, the reason, no levels", e.Stale, e.Reason, len(e.Bids)+len(e.Asks))
	}
	var se *book.StaleError
	if _, err := e.Book(); !errors.As(err, &se) {
		t.Errorf("Book of a stale entry: %v, want a *book.StaleError", err)
	}

	b = liveBook(t, [3]string{"bid", "1", "1"}, [3]string{"ask", "2", "1"})
	w.Offer(b)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(w.Metrics().Stale.WithLabelValues("kraken")); n != 0 {
		t.Errorf("stale books gauge after resync = %v, want 0", n)
	}
	if e, _ := r.Read(ctx, market.Kraken, "BTC-USD"); e.Stale {
		t.Errorf("live book read as stale: %s", e.Reason)
	}
	clk.t = clk.t.Add(11 * time.Second)
	e, err = r.Read(ctx, market.Kraken, "BTC-USD")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Stale || !strings.Contains(e.Reason, "not written for 11s") {
		t.Errorf("an 11s old book: stale=%v reason=%q; want stale for its age", e.Stale, e.Reason)
	}
}

// failOnce fails the first pipeline it sees: a Redis outage, injected.
type failOnce struct{ failed bool }

func (h *failOnce) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.failed {
			h.failed = true
			return errors.New("injected: connection refused")
		}
		return next(ctx, cmds)
	}
}

func TestFailedWriteIsRetried(t *testing.T) {
	ctx := context.Background()
	base := redistest.Client(t)
	prefix := redistest.Prefix(t, base)
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()})
	defer rdb.Close()
	rdb.AddHook(&failOnce{})
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix}, nil, reg)
	w.Offer(liveBook(t, [3]string{"bid", "1", "1"}, [3]string{"ask", "2", "1"}))
	if err := w.Flush(ctx); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("flush during an outage: %v, want the Redis error", err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix}).Read(ctx, market.Kraken, "BTC-USD"); err != nil {
		t.Errorf("the book whose write failed was not written by the next flush: %v", err)
	}
}

// TestReplayMatchesOfflineBooks replays the captures through bookreplay with the
// writer as its Offer hook (what `tickstash replay --books` does) and checks that
// every book in Redis equals the offline `tickstash books` line of the same market.
func TestReplayMatchesOfflineBooks(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	const depth = 20
	for _, f := range []string{"binance-spot-2021.jsonl", "binance-us-2021.jsonl", "coinbase-exchange-2021.jsonl", "kraken-v1-2021.jsonl"} {
		t.Run(f, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: depth}, nil, reg)
			var out bytes.Buffer
			_, err := bookreplay.Run(ctx, []string{captures + f}, bookreplay.Config{Depth: depth, Out: &out, Offer: w.Offer})
			if err != nil && !errors.Is(err, bookreplay.ErrNotLive) {
				t.Fatal(err)
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: time.Hour})
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				var want struct {
					Exchange market.Exchange `json:"exchange"`
					Symbol   market.Symbol   `json:"symbol"`
					Time     time.Time       `json:"time"`
					Sequence int64           `json:"sequence"`
					State    string          `json:"state"`
					Bids     [][2]string     `json:"bids"`
					Asks     [][2]string     `json:"asks"`
				}
				if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
					t.Fatal(err)
				}
				e, err := r.Read(ctx, want.Exchange, want.Symbol)
				if err != nil {
					t.Fatalf("%s %s: %v", want.Exchange, want.Symbol, err)
				}
				if want.State == "" {
					want.State = "live"
				}
				got := e.BookSnapshot
				if got.State != want.State || got.Sequence != want.Sequence || !got.Time.Equal(want.Time) ||
					!cmp.Equal(got.Bids, want.Bids, cmp.Comparer(slices.Equal[[][2]string])) || !cmp.Equal(got.Asks, want.Asks, cmp.Comparer(slices.Equal[[][2]string])) {
					t.Errorf("%s %s in Redis differs from the offline book:\nredis:   %+v\noffline: %s", want.Exchange, want.Symbol, got, sc.Bytes())
				}
				n++
			}
			if n == 0 {
				t.Fatal("the offline replay wrote no book")
			}
		})
	}
}
