package binance

import (
	"testing"
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// Recorded messages (binance-spot-2021.jsonl) and a trade stream message.
var benchMessages = map[string]string{
	"aggTrade":   `{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}`,
	"trade":      `{"stream":"btcusdt@trade","data":{"e":"trade","E":1767225600123,"s":"BTCUSDT","t":4242,"p":"95000.01000000","q":"0.00100000","T":1767225600120,"m":true,"M":true}}`,
	"bookTicker": `{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}`,
	"kline":      `{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000","h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000","V":"58.00000000","Q":"20.46240000","B":"0"}}}`,
}

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"trade", "aggTrade", "bookTicker", "kline"} {
		msg := []byte(benchMessages[name])
		b.Run(name, func(b *testing.B) {
			dec := NewDecoder(market.Binance, nil)
			buf := make([]ingest.Draft, 0, 4)
			recv := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				evs, err := dec.Decode(buf[:0], msg, recv)
				if err != nil || len(evs) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
