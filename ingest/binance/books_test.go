package binance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

const spotCapture = "../../../shared/testdata/captures/binance-spot-2021.jsonl"

// spot is the Binance capture split into what a websocket server and a REST server
// replay: the stream's messages and the depth snapshots by native symbol.
type spot struct {
	msgs      []string
	snapshots map[string]string
	natives   []string
}

func loadSpot(t *testing.T) spot {
	t.Helper()
	r, err := capture.Open(spotCapture)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetHTTP(true)
	s := spot{snapshots: map[string]string{}}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Type {
		case capture.TypeRecv:
			s.msgs = append(s.msgs, string(rec.Data))
		case capture.TypeHTTP:
			if binance.IsDepthSnapshotURL(rec.Addr) {
				u, _ := url.Parse(rec.Addr)
				sym := u.Query().Get("symbol")
				s.snapshots[sym] = string(rec.Data)
				s.natives = append(s.natives, sym)
			}
		}
	}
	if len(s.snapshots) == 0 || len(s.msgs) == 0 {
		t.Fatal("the capture holds no depth snapshots or messages")
	}
	return s
}

// offlineBook is a line of `tickstash books`.
type offlineBook struct {
	Symbol   market.Symbol `json:"symbol"`
	Sequence int64         `json:"sequence"`
	State    string        `json:"state"`
	Bids     [][2]string   `json:"bids"`
	Asks     [][2]string   `json:"asks"`
}

func offline(t *testing.T, depth int) map[market.Symbol]offlineBook {
	t.Helper()
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), []string{spotCapture}, bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		t.Fatal(err)
	}
	books := map[market.Symbol]offlineBook{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var b offlineBook
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		books[b.Symbol] = b
	}
	return books
}

// restServer answers depth snapshot requests through answer, counting them per symbol.
type restServer struct {
	mu     sync.Mutex
	counts map[string]int
	times  map[string][]time.Time
	answer func(w http.ResponseWriter, sym string, n int)
}

func newREST(t *testing.T, answer func(w http.ResponseWriter, sym string, n int)) (*restServer, string) {
	rs := &restServer{counts: map[string]int{}, times: map[string][]time.Time{}, answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/depth" || r.URL.Query().Get("limit") != "1000" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		sym := r.URL.Query().Get("symbol")
		rs.mu.Lock()
		rs.counts[sym]++
		n := rs.counts[sym]
		rs.times[sym] = append(rs.times[sym], time.Now())
		rs.mu.Unlock()
		rs.answer(w, sym, n)
	}))
	t.Cleanup(srv.Close)
	return rs, srv.URL
}

func (rs *restServer) count(sym string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.counts[sym]
}

// runLive runs a Binance source with books against the servers, writing to Redis,
// until every book in Redis has the offline book's sequence; it returns the reader.
func runLive(t *testing.T, sp spot, script []wsfeedtest.Step, restURL string, reg *prometheus.Registry, want map[market.Symbol]offlineBook, depth int) *bookstore.Reader {
	t.Helper()
	r, _ := runLiveRecording(t, sp, script, restURL, reg, want, depth, nil)
	return r
}

// runLiveRecording is runLive with a recorder; stop ends the source and the writer.
func runLiveRecording(t *testing.T, sp spot, script []wsfeedtest.Step, restURL string, reg *prometheus.Registry,
	want map[market.Symbol]offlineBook, depth int, rec *capture.Writer) (_ *bookstore.Reader, stop func()) {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ws := wsfeedtest.NewServer(t, script)
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: depth, Interval: 10 * time.Millisecond}, nil, reg)
	cfg := binance.Config{URL: ws.URL + "/stream", Symbols: sp.natives, Streams: []string{"trade"},
		RESTURL: restURL,
		Books: &bookfeed.Options{Offer: w.Offer, Metrics: bookfeed.NewMetrics(reg, market.Binance),
			Retry: backoff.Policy{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}},
	}
	if rec != nil {
		cfg.Recorder = rec
	}
	src := binance.New(cfg, nil, reg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	out := make(chan ingest.Event, 64)
	wg.Add(3)
	go func() { defer wg.Done(); _ = src.Run(ctx, out) }()
	go func() { defer wg.Done(); _ = w.Run(ctx) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-out:
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: time.Hour})
	testenv.WaitFor(t, "the live books in Redis to reach the offline books' sequences", func() bool {
		for sym, b := range want {
			e, err := r.Read(context.Background(), market.Binance, sym)
			if err != nil || e.Stale || e.Sequence != b.Sequence {
				return false
			}
		}
		return true
	})
	return r, stop
}

func checkEqual(t *testing.T, r *bookstore.Reader, want map[market.Symbol]offlineBook) {
	t.Helper()
	for sym, b := range want {
		e, err := r.Read(context.Background(), market.Binance, sym)
		if err != nil {
			t.Fatal(err)
		}
		if !sameLevels(e.Bids, b.Bids) || !sameLevels(e.Asks, b.Asks) {
			t.Errorf("%s: the live book in Redis differs from `tickstash books`:\nlive bids %v\nwant bids %v\nlive asks %v\nwant asks %v",
				sym, e.Bids, b.Bids, e.Asks, b.Asks)
		}
	}
}

func sameLevels(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func script(msgs []string) []wsfeedtest.Step {
	var steps []wsfeedtest.Step
	for _, m := range msgs {
		steps = append(steps, wsfeedtest.Step{Send: m})
	}
	return append(steps, wsfeedtest.Step{Silence: true})
}

// TestLiveBooksEqualOfflineBooks replays the capture's stream from a websocket server
// and its REST snapshots from an HTTP server: the books the live source keeps in Redis
// equal the offline `tickstash books` result.
func TestLiveBooksEqualOfflineBooks(t *testing.T) {
	sp := loadSpot(t)
	const depth = 20
	want := offline(t, depth)
	rs, restURL := newREST(t, func(w http.ResponseWriter, sym string, _ int) { io.WriteString(w, sp.snapshots[sym]) })
	reg := prometheus.NewRegistry()
	r := runLive(t, sp, script(sp.msgs), restURL, reg, want, depth)
	checkEqual(t, r, want)
	for _, n := range sp.natives {
		if c := rs.count(n); c != 1 {
			t.Errorf("%s: %d snapshot requests, want 1 (no resync on a clean stream)", n, c)
		}
	}
}

// TestDroppedMessageResyncs drops one diff of NKNUSDT: the gap makes the book stale,
// the keeper fetches a new snapshot (the REST server's second answer is the final
// book), and the book in Redis ends equal to the offline one.
func TestDroppedMessageResyncs(t *testing.T) {
	sp := loadSpot(t)
	const depth = 20
	want := offline(t, depth)
	full := offline(t, 0)
	var msgs []string
	dropped := false
	seen := 0
	for _, m := range sp.msgs {
		if !dropped && strings.Contains(m, `"nknusdt@depth`) {
			if seen++; seen == 3 {
				dropped = true
				continue
			}
		}
		msgs = append(msgs, m)
	}
	if !dropped {
		t.Fatal("the capture has fewer than 3 NKNUSDT diffs")
	}
	final := full["NKN-USDT"]
	finalSnapshot, _ := json.Marshal(map[string]any{"lastUpdateId": final.Sequence, "bids": final.Bids, "asks": final.Asks})
	rs, restURL := newREST(t, func(w http.ResponseWriter, sym string, n int) {
		if sym == "NKNUSDT" && n > 1 {
			w.Write(finalSnapshot)
			return
		}
		io.WriteString(w, sp.snapshots[sym])
	})
	reg := prometheus.NewRegistry()
	r := runLive(t, sp, script(msgs), restURL, reg, want, depth)
	checkEqual(t, r, want)
	if c := rs.count("NKNUSDT"); c < 2 {
		t.Errorf("NKNUSDT: %d snapshot requests, want a second one for the resync", c)
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_resyncs_total", map[string]string{"exchange": "binance", "reason": "gap"}); n < 1 {
		t.Errorf("tickstash_book_resyncs_total{reason=gap} = %v, want at least 1", n)
	}
}

// TestRateLimitedSnapshotWaitsRetryAfter answers the first snapshot request of
// NKNUSDT with 429 and Retry-After: 1; the next request comes no sooner than a second
// later, and the book syncs.
func TestRateLimitedSnapshotWaitsRetryAfter(t *testing.T) {
	sp := loadSpot(t)
	const depth = 5
	want := offline(t, depth)
	rs, restURL := newREST(t, func(w http.ResponseWriter, sym string, n int) {
		if sym == "NKNUSDT" && n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, sp.snapshots[sym])
	})
	reg := prometheus.NewRegistry()
	r := runLive(t, sp, script(sp.msgs), restURL, reg, want, depth)
	checkEqual(t, r, want)
	rs.mu.Lock()
	times := rs.times["NKNUSDT"]
	rs.mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("NKNUSDT: %d snapshot requests, want 2 (the 429, then the retry)", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("the retry came %v after the 429, before its Retry-After of 1s", gap)
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_snapshot_errors_total", map[string]string{"exchange": "binance"}); n != 1 {
		t.Errorf("tickstash_book_snapshot_errors_total = %v, want 1", n)
	}
}

// TestRecordedSessionReplaysItsBooks records a live session with --record's writer:
// the REST snapshots are recorded as http lines, so `tickstash books` on the recording
// gives the books the session kept.
func TestRecordedSessionReplaysItsBooks(t *testing.T) {
	sp := loadSpot(t)
	const depth = 10
	want := offline(t, depth)
	_, restURL := newREST(t, func(w http.ResponseWriter, sym string, _ int) { io.WriteString(w, sp.snapshots[sym]) })
	rec, err := capture.NewWriter(capture.WriterConfig{Dir: t.TempDir(), Exchange: market.Binance})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runLiveRecording(t, sp, script(sp.msgs), restURL, prometheus.NewRegistry(), want, depth, rec)
	stop()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), rec.Files(), bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		t.Fatalf("replaying the recording: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var b offlineBook
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		w := want[b.Symbol]
		if b.Sequence != w.Sequence || !sameLevels(b.Bids, w.Bids) || !sameLevels(b.Asks, w.Asks) {
			t.Errorf("%s replayed from the recording: %s; the capture gives sequence %d %v %v", b.Symbol, sc.Bytes(), w.Sequence, w.Bids, w.Asks)
		}
		n++
	}
	if n != len(want) {
		t.Errorf("the recording replays %d books, want %d", n, len(want))
	}
}
