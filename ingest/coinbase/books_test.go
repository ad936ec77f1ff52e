package coinbase_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/book/bookreplay"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

const exchangeCapture = "../../../shared/testdata/captures/coinbase-exchange-2021.jsonl"

// TestLiveBooksEqualOfflineBooks plays the Coinbase Exchange capture (level2 snapshots
// and ~9 700 l2updates beside matches and tickers) from a websocket server to a source
// with --books: the books it keeps in Redis equal `tickstash books` on the capture, and
// it subscribed to level2_batch (level2 needs authentication).
func TestLiveBooksEqualOfflineBooks(t *testing.T) {
	r, err := capture.Open(exchangeCapture)
	if err != nil {
		t.Fatal(err)
	}
	var steps []wsfeedtest.Step
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == capture.TypeRecv {
			steps = append(steps, wsfeedtest.Step{Send: string(rec.Data)})
		}
	}
	r.Close()
	steps = append([]wsfeedtest.Step{{AwaitSubscribe: 1}}, append(steps, wsfeedtest.Step{Silence: true})...)

	const depth = 15
	var out bytes.Buffer
	if _, err := bookreplay.Run(context.Background(), []string{exchangeCapture}, bookreplay.Config{Depth: depth, Out: &out}); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Symbol   market.Symbol `json:"symbol"`
		Sequence int64         `json:"sequence"`
		Bids     [][2]string   `json:"bids"`
		Asks     [][2]string   `json:"asks"`
	}
	want := map[market.Symbol]line{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		want[l.Symbol] = l
	}

	ws := wsfeedtest.NewServer(t, steps)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	reg := prometheus.NewRegistry()
	w := bookstore.New(rdb, bookstore.Config{Prefix: prefix, Depth: depth, Interval: 10 * time.Millisecond}, nil, reg)
	src := coinbase.New(coinbase.Config{API: coinbase.ExchangeFeed, URL: ws.URL, Products: []string{"SKL-USD"},
		Books: &bookfeed.Options{Offer: w.Offer, Metrics: bookfeed.NewMetrics(reg, market.Coinbase)}}, nil, reg)
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

	rd := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix, MaxAge: time.Hour})
	testenv.WaitFor(t, "the live books to reach the offline books' sequences", func() bool {
		for sym, l := range want {
			e, err := rd.Read(context.Background(), market.Coinbase, sym)
			if err != nil || e.Stale || e.Sequence != l.Sequence {
				return false
			}
		}
		return true
	})
	for sym, l := range want {
		e, _ := rd.Read(context.Background(), market.Coinbase, sym)
		got, _ := json.Marshal([]any{e.Bids, e.Asks})
		exp, _ := json.Marshal([]any{l.Bids, l.Asks})
		if !bytes.Equal(got, exp) {
			t.Errorf("%s: live %s\nwant %s", sym, got, exp)
		}
	}
	if sub := ws.Conns()[0].Received; len(sub) == 0 || !strings.Contains(sub[0], `"level2_batch"`) {
		t.Errorf("subscribe messages %q: want the level2_batch channel", sub)
	}
}
