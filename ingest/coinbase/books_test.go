package coinbase_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/bookfeed/bookfeedtest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/market"
)

const exchangeCapture = "coinbase-exchange-2021.jsonl"

// TestLiveBooksEqualOfflineBooks plays the Coinbase Exchange capture (level2 snapshots
// and ~9 700 l2updates beside matches and tickers) from a websocket server to a source
// with --books: the books it keeps in Redis equal `tickstash books` on the capture, and
// it subscribed to level2_batch (level2 needs authentication).
func TestLiveBooksEqualOfflineBooks(t *testing.T) {
	var steps []wsfeedtest.Step
	for _, rec := range capturetest.Recv(t, exchangeCapture) {
		steps = append(steps, wsfeedtest.Step{Send: string(rec.Data)})
	}
	steps = append([]wsfeedtest.Step{{AwaitSubscribe: 1}}, append(steps, wsfeedtest.Step{Silence: true})...)

	const depth = 15
	want := bookfeedtest.Offline(t, depth, capturetest.Path(t, exchangeCapture))
	ws := wsfeedtest.NewServer(t, steps)
	reg := prometheus.NewRegistry()
	st := bookfeedtest.NewStore(t, depth, reg)
	src := coinbase.New(coinbase.Config{API: coinbase.ExchangeFeed, URL: ws.URL, Products: []string{"SKL-USD"},
		Books: &bookfeed.Options{Offer: st.Writer.Offer, Metrics: bookfeed.NewMetrics(reg, market.Coinbase)}}, nil, reg)
	st.Run(t, src)
	st.WaitSynced(t, market.Coinbase, want, nil)
	st.CheckEqual(t, market.Coinbase, want)
	if sub := ws.Conns()[0].Received; len(sub) == 0 || !strings.Contains(sub[0], `"level2_batch"`) {
		t.Errorf("subscribe messages %q: want the level2_batch channel", sub)
	}
}

// advancedMessages rewrites the Coinbase Exchange capture's level2 traffic into
// Advanced Trade's l2_data shape (snapshot and update events, sides bid/offer,
// price_level/new_quantity, one connection-wide sequence_num): there is no Advanced
// Trade capture, and this plays real book traffic through that live path. skip, when
// positive, leaves out the message with that sequence number (a lost message). It also
// returns each product's last sequence number, the sequence its live book ends at.
func advancedMessages(t *testing.T, skip int) ([]wsfeedtest.Step, map[market.Symbol]int64) {
	t.Helper()
	type update struct {
		Side      string `json:"side"`
		EventTime string `json:"event_time,omitempty"`
		Price     string `json:"price_level"`
		Qty       string `json:"new_quantity"`
	}
	var steps []wsfeedtest.Step
	last := map[market.Symbol]int64{}
	seq := 0
	for _, rec := range capturetest.Recv(t, exchangeCapture) {
		var m struct {
			Type, Time          string
			ProductID           string `json:"product_id"`
			Bids, Asks, Changes [][]string
		}
		if err := json.Unmarshal(rec.Data, &m); err != nil {
			t.Fatalf("%s: %v", rec.Data, err)
		}
		var ev struct {
			Type      string   `json:"type"`
			ProductID string   `json:"product_id"`
			Updates   []update `json:"updates"`
		}
		switch m.Type {
		case "snapshot":
			ev.Type = "snapshot"
			for _, l := range m.Bids {
				ev.Updates = append(ev.Updates, update{Side: "bid", Price: l[0], Qty: l[1]})
			}
			for _, l := range m.Asks {
				ev.Updates = append(ev.Updates, update{Side: "offer", Price: l[0], Qty: l[1]})
			}
		case "l2update":
			ev.Type = "update"
			for _, c := range m.Changes {
				side := map[string]string{"buy": "bid", "sell": "offer"}[c[0]]
				ev.Updates = append(ev.Updates, update{Side: side, EventTime: m.Time, Price: c[1], Qty: c[2]})
			}
		default:
			continue
		}
		ev.ProductID = m.ProductID
		seq++
		last[market.Symbol(m.ProductID)] = int64(seq)
		if seq == skip {
			continue
		}
		ts := m.Time
		if ts == "" {
			ts = rec.Time.UTC().Format(time.RFC3339Nano)
		}
		msg, err := json.Marshal(map[string]any{"channel": "l2_data", "client_id": "", "timestamp": ts,
			"sequence_num": seq, "events": []any{ev}})
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, wsfeedtest.Step{Send: string(msg)})
	}
	if seq < 1000 {
		t.Fatalf("%d level2 messages in the capture", seq)
	}
	// The source subscribes to four channels (heartbeats, market_trades, ticker, level2).
	return append([]wsfeedtest.Step{{AwaitSubscribe: 4}}, append(steps, wsfeedtest.Step{Silence: true})...), last
}

// TestLiveBooksAdvancedTrade plays the capture's level2 traffic in Advanced Trade's
// shape with one message missing from the first connection: the gap in sequence_num
// makes the books stale and the source redials; the second connection plays it whole,
// and the books in Redis equal `tickstash books` on the Exchange capture.
func TestLiveBooksAdvancedTrade(t *testing.T) {
	const depth = 15
	want := bookfeedtest.Offline(t, depth, capturetest.Path(t, exchangeCapture))
	whole, last := advancedMessages(t, 0)
	for sym, b := range want {
		b.Sequence = last[sym]
		want[sym] = b
	}
	gapped, _ := advancedMessages(t, len(whole)/2)
	ws := wsfeedtest.NewServer(t, gapped, whole)
	reg := prometheus.NewRegistry()
	st := bookfeedtest.NewStore(t, depth, reg)
	src := coinbase.New(coinbase.Config{API: coinbase.AdvancedTrade, URL: ws.URL, Products: []string{"SKL-USD"},
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Books: &bookfeed.Options{Offer: st.Writer.Offer, Metrics: bookfeed.NewMetrics(reg, market.Coinbase)}}, nil, reg)
	st.Run(t, src)
	st.WaitSynced(t, market.Coinbase, want, func() bool { return len(ws.Conns()) >= 2 })
	st.CheckEqual(t, market.Coinbase, want)
	if sub := ws.Conns()[0].Received; !slices.ContainsFunc(sub, func(s string) bool { return strings.Contains(s, `"level2"`) }) {
		t.Errorf("subscribe messages %q: want the level2 channel", sub)
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_resyncs_total", map[string]string{"exchange": "coinbase", "reason": "gap"}); n < 1 {
		t.Errorf("gap resyncs = %v, want at least 1", n)
	}
}
