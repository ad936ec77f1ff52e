package kraken_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/bookfeed/bookfeedtest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/ingest/wsfeed/wsfeedtest"
	"github.com/tickstash/tickstash/market"
)

const krakenCapture = "kraken-v1-2021.jsonl"

// bookMessages returns the messages the capture's book connection received.
func bookMessages(t *testing.T) []string {
	t.Helper()
	var msgs []string
	for _, rec := range capturetest.Recv(t, krakenCapture) {
		if rec.Conn == "KRAKEN.ws.50" {
			msgs = append(msgs, string(rec.Data))
		}
	}
	if len(msgs) < 100 {
		t.Fatalf("%d book messages in the capture", len(msgs))
	}
	return msgs
}

var checksumRe = regexp.MustCompile(`"c":"(\d+)"`)

// alterOneChecksum returns msgs as a connection's steps with the first checksum (sum, the
// pattern's first group) of the second half changed, then silence.
func alterOneChecksum(t *testing.T, msgs []string, sum *regexp.Regexp) []wsfeedtest.Step {
	t.Helper()
	var steps []wsfeedtest.Step
	altered := false
	for i, m := range msgs {
		if !altered && i > len(msgs)/2 {
			if loc := sum.FindStringSubmatchIndex(m); loc != nil {
				n, _ := strconv.ParseUint(m[loc[2]:loc[3]], 10, 32)
				m = m[:loc[2]] + strconv.FormatUint((n+1)%(1<<32), 10) + m[loc[3]:]
				altered = true
			}
		}
		steps = append(steps, wsfeedtest.Step{Send: m})
	}
	if !altered {
		t.Fatal("no checksum to alter")
	}
	return append(steps, wsfeedtest.Step{Silence: true})
}

// playAll returns msgs as a connection's steps, then silence.
func playAll(msgs []string) []wsfeedtest.Step {
	var steps []wsfeedtest.Step
	for _, m := range msgs {
		steps = append(steps, wsfeedtest.Step{Send: m})
	}
	return append(steps, wsfeedtest.Step{Silence: true})
}

// playChecksumMismatch serves msgs on a first connection with one checksum (sum's first
// group) altered and intact on the next, to a source of the given protocol version
// subscribed to pair; it waits for the books in Redis to equal the offline `tickstash
// books` result of the capture after a resubscribe, checks that one checksum failed,
// and returns the source's metrics.
func playChecksumMismatch(t *testing.T, version int, pair string, msgs []string, sum *regexp.Regexp) *prometheus.Registry {
	t.Helper()
	const depth = 10
	want := bookfeedtest.Offline(t, depth, capturetest.Path(t, krakenCapture))
	ws := wsfeedtest.NewServer(t, alterOneChecksum(t, msgs, sum), playAll(msgs))
	reg := prometheus.NewRegistry()
	st := bookfeedtest.NewStore(t, depth, reg)
	src := kraken.New(kraken.Config{Version: version, URL: ws.URL, Pairs: []string{pair}, BookDepth: 1000,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Books: &bookfeed.Options{Offer: st.Writer.Offer, Metrics: bookfeed.NewMetrics(reg, market.Kraken)}}, nil, reg)
	st.Run(t, src)
	st.WaitSynced(t, market.Kraken, want, func() bool { return len(ws.Conns()) >= 2 })
	st.CheckEqual(t, market.Kraken, want)
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_checksum_failures_total", map[string]string{"exchange": "kraken"}); n != 1 {
		t.Errorf("checksum failures = %v, want 1 (the altered one)", n)
	}
	return reg
}

// TestLiveBooksChecksumMismatchResubscribes plays the capture's book connection with
// one update's checksum altered: the book goes stale, the connection is dropped and
// redialled (a resubscribe), the second connection plays the capture intact, and the
// books in Redis equal the offline `tickstash books` result.
func TestLiveBooksChecksumMismatchResubscribes(t *testing.T) {
	msgs := bookMessages(t)
	reg := playChecksumMismatch(t, 1, "XBT/USD", msgs, checksumRe)
	if n := wsfeedtest.Metric(t, reg, "tickstash_book_resyncs_total", map[string]string{"exchange": "kraken", "reason": "checksum"}); n != 1 {
		t.Errorf("checksum resyncs = %v, want 1", n)
	}
}

// v2BookMessages rewrites the v1 capture's book connection into Kraken v2's shape
// ({"channel":"book","type":"snapshot"|"update","data":[{"symbol","bids","asks",
// "checksum"}]}, prices and sizes as JSON numbers written with the capture's digits,
// XBT as BTC): there is no v2 capture, and this plays real book traffic through the
// v2 live path.
func v2BookMessages(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range bookMessages(t) {
		var parts []json.RawMessage
		if json.Unmarshal([]byte(m), &parts) != nil || len(parts) < 4 {
			continue // events: status, subscription replies, heartbeats
		}
		var pair string
		if err := json.Unmarshal(parts[len(parts)-1], &pair); err != nil {
			t.Fatalf("pair of %s: %v", m, err)
		}
		entry := map[string]any{"symbol": strings.Replace(pair, "XBT", "BTC", 1)}
		typ := "update"
		for _, raw := range parts[1 : len(parts)-2] {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatalf("book object of %s: %v", m, err)
			}
			for key, v := range obj {
				switch key {
				case "as", "bs", "a", "b":
					if len(key) == 2 {
						typ = "snapshot"
					}
					side := map[byte]string{'a': "asks", 'b': "bids"}[key[0]]
					var levels [][]json.RawMessage
					if err := json.Unmarshal(v, &levels); err != nil {
						t.Fatalf("levels of %s: %v", m, err)
					}
					list, _ := entry[side].([]map[string]json.RawMessage)
					for _, l := range levels {
						var p, q string
						_ = json.Unmarshal(l[0], &p)
						_ = json.Unmarshal(l[1], &q)
						list = append(list, map[string]json.RawMessage{"price": json.RawMessage(p), "qty": json.RawMessage(q)})
					}
					entry[side] = list
				case "c":
					var c string
					_ = json.Unmarshal(v, &c)
					entry["checksum"] = json.RawMessage(c)
				}
			}
		}
		for _, side := range []string{"bids", "asks"} {
			if entry[side] == nil {
				entry[side] = []any{}
			}
		}
		msg, err := json.Marshal(map[string]any{"channel": "book", "type": typ, "data": []any{entry}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(msg))
	}
	if len(out) < 100 {
		t.Fatalf("%d v2 book messages", len(out))
	}
	return out
}

// TestLiveBooksV2 plays the capture's book traffic in v2's shape through a v2 source:
// every update's checksum verifies, and the books in Redis equal the offline
// `tickstash books` result of the v1 capture; then one altered checksum makes the book
// stale and resubscribes, as in v1.
func TestLiveBooksV2(t *testing.T) {
	playChecksumMismatch(t, 2, "BTC/USD", v2BookMessages(t), regexp.MustCompile(`"checksum":(\d+)`))
}
