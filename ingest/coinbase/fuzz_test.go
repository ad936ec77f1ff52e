package coinbase

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
)

func fuzzDecoder(f *testing.F, dec wsfeed.Decoder) {
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		evs, err := dec.Decode(nil, msg, recv)
		if err != nil && len(evs) != 0 {
			t.Fatalf("error %v with %d events", err, len(evs))
		}
		for _, ev := range evs {
			var ds []decimal.Decimal
			switch ev.Kind {
			case ingest.KindTrade:
				ds = []decimal.Decimal{ev.Trade.Price, ev.Trade.Qty}
			case ingest.KindQuote:
				ds = []decimal.Decimal{ev.Quote.Bid, ev.Quote.Ask}
			default:
				t.Fatalf("event kind %d", ev.Kind)
			}
			for _, d := range ds {
				if back, err := decimal.NewFromString(d.String()); err != nil || !back.Equal(d) {
					t.Fatalf("decimal %s does not round-trip", d)
				}
			}
		}
	})
}

// FuzzExchangeDecoder is seeded with the recorded ws-feed messages other than the
// thousands of level2 updates.
func FuzzExchangeDecoder(f *testing.F) {
	l2 := 0
	for _, rec := range capturetest.Recv(f, "coinbase-exchange-2021.jsonl") {
		if len(rec.Data) > 20 && string(rec.Data[:20]) == `{"type":"l2update","` {
			if l2++; l2 > 5 {
				continue
			}
		}
		if len(rec.Data) < 4096 {
			f.Add(rec.Data)
		}
	}
	fuzzDecoder(f, NewExchangeDecoder())
}

// FuzzAdvancedDecoder is seeded with documented Advanced Trade messages.
func FuzzAdvancedDecoder(f *testing.F) {
	for _, m := range []string{advTradesSnapshot, advTradesUpdate, advTicker, advHeartbeat, advSubscriptions} {
		f.Add([]byte(m))
	}
	fuzzDecoder(f, NewAdvancedDecoder())
}
