package kraken_test

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/bookfeed/bookfeedtest"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
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

var checksumRe = regexp.MustCompile(`"c":"(\d+)"`)

// TestLiveBooksChecksumMismatchResubscribes plays the capture's book connection with
// one update's checksum altered: the book goes stale, the connection is dropped and
// redialled (a resubscribe), the second connection plays the capture intact, and the
// books in Redis equal the offline `tickstash books` result.
func TestLiveBooksChecksumMismatchResubscribes(t *testing.T) {
	msgs := bookMessages(t)
	const depth = 10
	want := bookfeedtest.Offline(t, depth, krakenCapture)

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

	reg := prometheus.NewRegistry()
	st := bookfeedtest.NewStore(t, depth, reg)
	src := kraken.New(kraken.Config{Version: 1, URL: ws.URL, Pairs: []string{"XBT/USD"}, BookDepth: 1000,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Books: &bookfeed.Options{Offer: st.Writer.Offer, Metrics: bookfeed.NewMetrics(reg, market.Kraken)}}, nil, reg)
	st.Run(t, src)
	st.WaitSynced(t, market.Kraken, want, func() bool { return len(ws.Conns()) >= 2 })
	st.CheckEqual(t, market.Kraken, want)
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_checksum_failures_total", map[string]string{"exchange": "kraken"}); n != 1 {
		t.Errorf("checksum failures = %v, want 1", n)
	}
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_resyncs_total", map[string]string{"exchange": "kraken", "reason": "checksum"}); n != 1 {
		t.Errorf("checksum resyncs = %v, want 1", n)
	}
}
