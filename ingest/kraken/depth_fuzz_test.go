package kraken

import (
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/market"
)

// FuzzDepthDecode is seeded with the recorded v1 book messages (snapshots and
// updates) and v2 book messages; whatever decodes must apply to a book without panics.
func FuzzDepthDecode(f *testing.F) {
	n := 0
	for _, rec := range capturetest.Recv(f, "kraken-v1-2021.jsonl") {
		if containsAny(rec.Data, `"as"`) || (containsAny(rec.Data, `book-`) && n < 40) {
			f.Add(rec.Data)
			n++
		}
	}
	for _, m := range []string{
		`{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000}],"asks":[{"price":45285.2,"qty":0.00100000}],"checksum":3310070434}]}`,
		`{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0}],"asks":[],"checksum":1,"timestamp":"2023-10-06T17:35:55.440295Z"}]}`,
		`[1,{"a":[["0.05120","0.00000500","1582905486.493008","r"]]},{"b":[["0.04765","0.00000500","1582905486.493008"]],"c":"974947235"},"book-10","XBT/USD"]`,
	} {
		f.Add([]byte(m))
	}
	dec := NewDepthDecoder(0)
	syncer := book.NewSyncer(market.Kraken, book.RulesKraken, book.SyncConfig{})
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := dec.Decode(nil, msg, recv)
		if err != nil && len(recs) != 0 {
			t.Fatalf("error %v with %d records", err, len(recs))
		}
		for _, r := range recs {
			if r.Symbol.Validate() != nil || r.MaxDepth <= 0 {
				t.Fatalf("record %+v", r)
			}
			for _, l := range r.Levels {
				if l.Price == nil || l.Qty == nil {
					t.Fatalf("level %+v", l)
				}
			}
		}
		syncer.Apply(recs)
		for _, b := range syncer.Books() {
			if b.Status().State == book.StateLive && b.Crossed() {
				t.Fatalf("%s live but crossed", b.Symbol())
			}
		}
	})
}
