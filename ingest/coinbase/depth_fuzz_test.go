package coinbase

import (
	"bytes"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/market"
)

const advancedL2 = `{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":4,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.73","new_quantity":"0.06317902"},{"side":"offer","event_time":"2023-02-09T20:32:50.714964855Z","price_level":"21921.74","new_quantity":"0"}]}]}`

func checkDepth(t *testing.T, recs []book.Depth, err error) {
	t.Helper()
	if err != nil && len(recs) != 0 {
		t.Fatalf("error %v with %d records", err, len(recs))
	}
	for _, r := range recs {
		if r.Kind != book.Sequence && r.Symbol.Validate() != nil {
			t.Fatalf("record %+v", r)
		}
		for _, l := range r.Levels {
			if l.Price == nil || l.Qty == nil {
				t.Fatalf("level %+v", l)
			}
		}
	}
}

// FuzzExchangeDepthDecode is seeded with the recorded level2 snapshots and updates.
func FuzzExchangeDepthDecode(f *testing.F) {
	n := 0
	for _, rec := range capturetest.Recv(f, "coinbase-exchange-2021.jsonl") {
		if bytes.Contains(rec.Data, []byte(`"snapshot"`)) || n < 40 {
			f.Add(rec.Data)
			n++
		}
	}
	dec := NewExchangeDepthDecoder()
	syncer := book.NewSyncer(market.Coinbase, book.RulesCoinbase, book.SyncConfig{})
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := dec.Decode(nil, msg, recv)
		checkDepth(t, recs, err)
		syncer.Apply(recs)
		for _, b := range syncer.Books() {
			if b.Status().State == book.StateLive && b.Crossed() {
				t.Fatalf("%s live but crossed", b.Symbol())
			}
		}
	})
}

// FuzzAdvancedDepthDecode is seeded with documented Advanced Trade messages.
func FuzzAdvancedDepthDecode(f *testing.F) {
	f.Add([]byte(advancedL2))
	f.Add([]byte(`{"channel":"heartbeats","client_id":"","timestamp":"2023-02-09T20:32:51Z","sequence_num":5,"events":[{"current_time":"2023-02-09 20:32:51","heartbeat_counter":3}]}`))
	f.Add([]byte(`{"channel":"l2_data","timestamp":"2023-02-09T20:32:50Z","sequence_num":1,"events":[{"type":"snapshot","product_id":"ETH-USD","updates":[{"side":"bid","price_level":"1500.1","new_quantity":"2"},{"side":"offer","price_level":"1500.2","new_quantity":"3"}]},{"type":"snapshot","product_id":"BTC-USD","updates":[]}]}`))
	dec := NewAdvancedDepthDecoder()
	syncer := book.NewSyncer(market.Coinbase, book.RulesCoinbaseAdvanced, book.SyncConfig{})
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := dec.Decode(nil, msg, recv)
		checkDepth(t, recs, err)
		for _, r := range recs {
			if r.First != recs[0].First || r.Last != r.First {
				t.Fatalf("records of one message with different sequences: %+v", recs)
			}
		}
		syncer.Apply(recs)
	})
}
