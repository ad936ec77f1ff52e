package kraken

import (
	"testing"
	"time"

	"github.com/tickstash/tickstash/ingest"
)

// Recorded v1 messages (kraken-v1-2021.jsonl) and documented v2 ones.
const (
	benchV1Trade  = `[993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]`
	benchV1Ticker = `[468,{"a":["56218.30000",0,"0.13690578"],"b":["56119.10000",0,"0.03333108"],"c":["56218.30000","0.01309422"],"v":["27.65107371","37.46739855"],"p":["56739.22516","56819.12875"],"t":[1300,1955],"l":["55636.00000","55636.00000"],"h":["57623.00000","57623.00000"],"o":["56737.90000","57093.00000"]},"ticker","XBT/CHF"]`
	benchV2Trade  = `{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":95000.1,"qty":0.00012345,"ord_type":"market","trade_id":4665906,"timestamp":"2026-01-01T00:00:00.708706Z"}]}`
)

func BenchmarkDecode(b *testing.B) {
	for _, bm := range []struct{ name, msg string }{
		{"v1/trade", benchV1Trade}, {"v1/ticker", benchV1Ticker}, {"v2/trade", benchV2Trade}, {"v2/ticker", v2Ticker},
	} {
		msg := []byte(bm.msg)
		b.Run(bm.name, func(b *testing.B) {
			dec := NewDecoder()
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
