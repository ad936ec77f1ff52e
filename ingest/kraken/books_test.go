package kraken_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

const krakenCapture = "../../../shared/testdata/captures/kraken-v1-2021.jsonl"

// bookMessages returns the messages the capture's book connection received.
func bookMessages(t *testing.T) []string {
	t.Helper()
	r, err := capture.Open(krakenCapture)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var msgs []string
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == capture.TypeRecv && rec.Conn == "KRAKEN.ws.50" {
			msgs = append(msgs, string(rec.Data))
		}
	}
	if len(msgs) < 100 {
		t.Fatalf("%d book messages in the capture", len(msgs))
	}
	return msgs
}

type offlineBook struct {
	Symbol   market.Symbol `json:"symbol"`
	Sequence int64         `json:"sequence"`
	Bids     [][2]string   `json:"bids"`
	Asks     [][2]string   `json:"asks"`
}

var checksumRe = regexp.MustCompile(`"c":"(\d+)"`)

// TestLiveBooksChecksumMismatchResubscribes plays the capture's book connection with
// one update's checksum altered: the book goes stale, the connection is dropped and
// redialled (a resubscribe), the second connection plays the capture intact, and the
// books in Redis equal the offline `tickstash books` result.
func TestLiveBooksChecksumMismatchResubscribes(t *testing.T) {
	msgs := bookMessages(t)
	const depth = 10
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), []string{krakenCapture}, bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		t.Fatal(err)
	}
	want := map[market.Symbol]offlineBook{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var b offlineBook
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		want[b.Symbol] = b
	}

	var first []wsfeedtest.Step
	altered := false
	for i, m := range msgs {
		if !altered && i > len(msgs)/2 {
			if loc := checksumRe.FindStringSubmatchIndex(m); loc != nil {
				n, _ := strconv.ParseUint(m[loc[2]:loc[3]], 10, 32)
				m = m[:loc[2]] + strconv.FormatUint((n+1)%(1<<32), 10) + m[loc[3]:]
				altered = true
			}
		}
		first = append(first, wsfeedtest.Step{Send: m})
	}
	if !altered {
		t.Fatal("no checksum to alter")
	}
	first = append(first, wsfeedtest.Step{Silence: true})
	var second []wsfeedtest.Step
	for _, m := range msgs {
		second = append(second, wsfeedtest.Step{Send: m})
	}
	second = append(second, wsfeedtest.Step{Silence: true})
	ws := wsfeedtest.NewServer(t, first, second)

	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: depth, Interval: 10 * time.Millisecond}, nil, reg)
	src := kraken.New(kraken.Config{Version: 1, URL: ws.URL, Pairs: []string{"XBT/USD"}, BookDepth: 1000,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Books: &bookfeed.Options{Offer: w.Offer, Metrics: bookfeed.NewMetrics(reg, market.Kraken)}}, nil, reg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	events := make(chan ingest.Event, 64)
	wg.Add(3)
	go func() { defer wg.Done(); _ = src.Run(ctx, events) }()
	go func() { defer wg.Done(); _ = w.Run(ctx) }()
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
	defer func() { cancel(); wg.Wait() }()

	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: time.Hour})
	testenv.WaitFor(t, "the books of the second connection to reach the offline books", func() bool {
		if len(ws.Conns()) < 2 {
			return false
		}
		for sym, b := range want {
			e, err := r.Read(context.Background(), market.Kraken, sym)
			if err != nil || e.Stale || e.Sequence != b.Sequence {
				return false
			}
		}
		return true
	})
	for sym, b := range want {
		e, _ := r.Read(context.Background(), market.Kraken, sym)
		if !equal(e.Bids, b.Bids) || !equal(e.Asks, b.Asks) {
			t.Errorf("%s: live book differs from the offline one:\nlive %v %v\nwant %v %v", sym, e.Bids, e.Asks, b.Bids, b.Asks)
		}
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_checksum_failures_total", map[string]string{"exchange": "kraken"}); n != 1 {
		t.Errorf("checksum failures = %v, want 1", n)
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_resyncs_total", map[string]string{"exchange": "kraken", "reason": "checksum"}); n != 1 {
		t.Errorf("checksum resyncs = %v, want 1", n)
	}
}

func equal(a, b [][2]string) bool {
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
