package binance

import (
	"bytes"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/market"
)

// FuzzDepthDecode is seeded with the recorded depthUpdate messages (and the other
// streams, which must decode to nothing).
func FuzzDepthDecode(f *testing.F) {
	for i, rec := range capturetest.Recv(f, "binance-spot-2021.jsonl") {
		if i < 60 {
			f.Add(rec.Data)
		}
	}
	f.Add([]byte(`{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,"b":[["1.5","2"]],"a":[["1.6","0"]]}`))
	f.Add([]byte(`{"lastUpdateId":5,"bids":[["1.5","2"]],"asks":[["1.6","1"]]}`))
	dec := NewDepthDecoder(market.Binance, nil)
	syncer := book.NewSyncer(market.Binance, book.RulesBinance, book.SyncConfig{MaxBuffered: 50})
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := dec.Decode(nil, msg, recv)
		if err != nil && len(recs) != 0 {
			t.Fatalf("error %v with %d records", err, len(recs))
		}
		for _, r := range recs {
			if r.Symbol.Validate() != nil || r.First > r.Last {
				t.Fatalf("record %+v", r)
			}
		}
		syncer.Apply(recs)
		// The same bytes as a REST snapshot body.
		if bytes.HasPrefix(msg, []byte(`{"lastUpdateId"`)) {
			d, err := dec.DecodeSnapshot("https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000", msg, recv)
			if err == nil {
				syncer.Apply([]book.Depth{d})
			}
		}
		for _, b := range syncer.Books() {
			if b.Status().State == book.StateLive && b.Crossed() {
				t.Fatalf("%s live but crossed", b.Symbol())
			}
		}
	})
}
