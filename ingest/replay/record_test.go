package replay

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/market"
)

// TestRecordThenReplay records a live session (with a reconnect) through the
// wsfeed recording hook and checks that replaying the files yields the same events.
func TestRecordThenReplay(t *testing.T) {
	msg := func(id int) string {
		return fmt.Sprintf(`{"stream":"ethbtc@aggTrade","data":{"e":"aggTrade","E":1,"s":"ETHBTC","a":%d,"p":"0.0%d","q":"1.5","f":1,"l":1,"T":176722560%04d,"m":true,"M":true}}`, id, id, id)
	}
	srv := wsfeedtest.NewServer(t,
		[]wsfeedtest.Step{{Send: msg(1)}, {Send: msg(2)}, {Drop: true}},
		[]wsfeedtest.Step{{Send: msg(2)}, {Send: msg(3)}, {Send: `{"stream":"ethbtc@bookTicker","data":{"u":1,"s":"ETHBTC","b":"0.05","B":"1","a":"0.06","A":"2"}}`}, {Send: msg(5)}},
	)
	w, err := capture.NewWriter(capture.WriterConfig{Dir: t.TempDir(), Exchange: market.Binance, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	src := binance.New(binance.Config{URL: srv.URL + "/stream", Symbols: []string{"ETHBTC"}, Streams: []string{"aggTrade", "bookTicker"},
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, Recorder: w}, nil, prometheus.NewRegistry())
	live := wsfeedtest.Collect(t, src, 10*time.Second, func(ev ingest.Event) bool { return wsfeedtest.TradeID(ev) == "5" })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	replayed := run(t, Config{Files: w.Files()}, nil)
	// Receive times are the recorded ones, to the microsecond.
	opt := cmpopts.EquateApproxTime(time.Microsecond)
	if diff := cmp.Diff(wsfeedtest.Records(live), wsfeedtest.Records(replayed), opt); diff != "" {
		t.Errorf("replayed events differ from live (-live +replayed):\n%s", diff)
	}
	if len(live) != 6 { // trades 1 2 3, quote, gap 4, trade 5
		t.Errorf("%d live events, want 6", len(live))
	}
}
