package binance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/bookfeed/bookfeedtest"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/internal/backoff"
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

// runLive runs a Binance source with books against the servers (recording to rec
// when it is not nil), writing to Redis, until every book in Redis has the offline
// book's sequence; stop ends the source and the writer.
func runLive(t *testing.T, sp spot, script []wsfeedtest.Step, restURL string, reg *prometheus.Registry,
	want map[market.Symbol]bookfeedtest.Book, depth int, rec *capture.Writer) (_ bookfeedtest.Store, stop func()) {
	t.Helper()
	ws := wsfeedtest.NewServer(t, script)
	st := bookfeedtest.NewStore(t, depth, reg)
	cfg := binance.Config{URL: ws.URL + "/stream", Symbols: sp.natives, Streams: []string{"trade"},
		RESTURL: restURL,
		Books: &bookfeed.Options{Offer: st.Writer.Offer, Metrics: bookfeed.NewMetrics(reg, market.Binance),
			Retry: backoff.Policy{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}},
	}
	if rec != nil {
		cfg.Recorder = rec
	}
	stop = st.Run(t, binance.New(cfg, nil, reg))
	st.WaitSynced(t, market.Binance, want, nil)
	return st, stop
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
	want := bookfeedtest.Offline(t, depth, spotCapture)
	rs, restURL := newREST(t, func(w http.ResponseWriter, sym string, _ int) { io.WriteString(w, sp.snapshots[sym]) })
	reg := prometheus.NewRegistry()
	st, _ := runLive(t, sp, script(sp.msgs), restURL, reg, want, depth, nil)
	st.CheckEqual(t, market.Binance, want)
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
	want := bookfeedtest.Offline(t, depth, spotCapture)
	full := bookfeedtest.Offline(t, 0, spotCapture)
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
	st, _ := runLive(t, sp, script(msgs), restURL, reg, want, depth, nil)
	st.CheckEqual(t, market.Binance, want)
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
	want := bookfeedtest.Offline(t, depth, spotCapture)
	rs, restURL := newREST(t, func(w http.ResponseWriter, sym string, n int) {
		if sym == "NKNUSDT" && n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, sp.snapshots[sym])
	})
	reg := prometheus.NewRegistry()
	st, _ := runLive(t, sp, script(sp.msgs), restURL, reg, want, depth, nil)
	st.CheckEqual(t, market.Binance, want)
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
	want := bookfeedtest.Offline(t, depth, spotCapture)
	_, restURL := newREST(t, func(w http.ResponseWriter, sym string, _ int) { io.WriteString(w, sp.snapshots[sym]) })
	rec, err := capture.NewWriter(capture.WriterConfig{Dir: t.TempDir(), Exchange: market.Binance})
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runLive(t, sp, script(sp.msgs), restURL, prometheus.NewRegistry(), want, depth, rec)
	stop()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), rec.Files(), bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		t.Fatalf("replaying the recording: %v", err)
	}
	got := bookfeedtest.Parse(t, out.Bytes())
	for sym, w := range want {
		b := got[sym]
		if b.Sequence != w.Sequence || !slices.Equal(b.Bids, w.Bids) || !slices.Equal(b.Asks, w.Asks) {
			t.Errorf("%s replayed from the recording: sequence %d %v %v; the capture gives sequence %d %v %v",
				sym, b.Sequence, b.Bids, b.Asks, w.Sequence, w.Bids, w.Asks)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the recording replays %d books, want %d", len(got), len(want))
	}
}
