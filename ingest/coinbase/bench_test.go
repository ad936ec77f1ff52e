package coinbase

import (
	"testing"
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
)

// Recorded ws-feed messages (coinbase-exchange-2021.jsonl) and documented Advanced
// Trade ones.
const (
	benchMatch  = `{"type":"match","trade_id":280232,"maker_order_id":"2a0da34e-61f7-4c36-88e5-c9dd15927b16","taker_order_id":"3c82abaa-c01e-4608-be59-6a1e69742891","side":"sell","size":"985","price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}`
	benchTicker = `{"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775","open_24h":"14.6647","volume_24h":"94381.28000000","low_24h":"14.3691","high_24h":"16.55","volume_30d":"2295579.57000000","best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}`
)

func BenchmarkDecode(b *testing.B) {
	for _, bm := range []struct {
		name string
		dec  wsfeed.Decoder
		msg  string
		n    int
	}{
		{"exchange/match", NewExchangeDecoder(), benchMatch, 1},
		{"exchange/ticker", NewExchangeDecoder(), benchTicker, 1},
		{"advanced/market_trades", NewAdvancedDecoder(), advTradesUpdate, 1},
		{"advanced/ticker", NewAdvancedDecoder(), advTicker, 1},
	} {
		msg := []byte(bm.msg)
		b.Run(bm.name, func(b *testing.B) {
			buf := make([]ingest.Draft, 0, 4)
			recv := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				evs, err := bm.dec.Decode(buf[:0], msg, recv)
				if err != nil || len(evs) != bm.n {
					b.Fatal(err)
				}
			}
		})
	}
}
