package coinbase_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/bookfeed/bookfeedtest"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
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
	want := bookfeedtest.Offline(t, depth, exchangeCapture)
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
