package binance

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
	"github.com/tickstash/tickstash/market"
)

// FuzzDecode feeds arbitrary messages to the decoder, seeded with recorded ones: it
// must not panic, and what it emits must carry exact decimals.
func FuzzDecode(f *testing.F) {
	for _, m := range benchMessages {
		f.Add([]byte(m))
	}
	seen := map[string]bool{}
	for _, rec := range capturetest.Recv(f, "binance-us-2021.jsonl") {
		if k := kind(rec.Data); !seen[k] || len(seen) < 40 {
			seen[k] = true
			f.Add(rec.Data)
		}
	}
	dec := NewDecoder(market.Binance, nil)
	recv := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		evs, err := dec.Decode(nil, msg, recv)
		if err != nil && len(evs) != 0 {
			t.Fatalf("error %v with %d events", err, len(evs))
		}
		for _, ev := range evs {
			checkEvent(t, ev)
		}
	})
}

func kind(msg []byte) string {
	if len(msg) > 40 {
		return string(msg[10:40])
	}
	return string(msg)
}

func checkEvent(t *testing.T, ev ingest.Draft) {
	t.Helper()
	var ds []decimal.Decimal
	switch ev.Kind {
	case ingest.KindTrade:
		ds = []decimal.Decimal{ev.Trade.Price, ev.Trade.Qty}
		if ev.Trade.Symbol.Validate() != nil {
			t.Fatalf("invalid symbol %q", ev.Trade.Symbol)
		}
	case ingest.KindQuote:
		ds = []decimal.Decimal{ev.Quote.Bid, ev.Quote.BidQty, ev.Quote.Ask, ev.Quote.AskQty}
	case ingest.KindCandle:
		ds = []decimal.Decimal{ev.Candle.Open, ev.Candle.High, ev.Candle.Low, ev.Candle.Close}
	default:
		t.Fatalf("event kind %d", ev.Kind)
	}
	for _, d := range ds {
		back, err := decimal.NewFromString(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("decimal %s does not round-trip", d)
		}
	}
}
