package embedded_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/embedded"
	"github.com/tickstash/tickstash/market"
)

// BenchmarkTradeMemory measures what one stored trade costs the embedded Redis: b.N
// trades over four markets, written by the market store as ingest writes them (stream
// entry, ticker, markets index), and the Go heap in use after a GC, before and after,
// divided by b.N. The client runs in the same process; its garbage is collected before
// each reading, and what it keeps (a pooled connection) does not grow with b.N. Run it
// with a fixed count, e.g. -benchtime 200000x.
func BenchmarkTradeMemory(b *testing.B) {
	srv, err := embedded.StartRedis("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{TradeRetention: 24 * time.Hour}, nil)
	ctx := context.Background()
	syms := []market.Symbol{"BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"}
	start := time.Now().Add(-time.Hour)
	price := decimal.RequireFromString("65000.12")
	qty := decimal.RequireFromString("0.00123")
	batch := make([]market.Trade, 0, 1000)
	write := func() {
		if _, err := store.Write(ctx, &cache.Batch{Trades: batch}); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	b.ResetTimer()
	for i := range b.N {
		at := start.Add(time.Duration(i) * 200 * time.Microsecond)
		batch = append(batch, market.Trade{Exchange: market.Synthetic, Symbol: syms[i%len(syms)], ID: strconv.Itoa(i + 1),
			Price: price, Qty: qty, Side: []market.Side{market.Buy, market.Sell}[i%2], Time: at, ReceivedAt: at})
		if len(batch) == cap(batch) {
			write()
		}
	}
	if len(batch) > 0 {
		write()
	}
	b.StopTimer()
	after := heap()
	if n, err := rdb.XLen(ctx, store.Keys().Trades(market.Synthetic, syms[0])).Result(); err != nil || n != int64((b.N+len(syms)-1)/len(syms)) {
		b.Fatalf("stream holds %d trades (%v), want %d", n, err, (b.N+len(syms)-1)/len(syms))
	}
	b.ReportMetric(float64(int64(after)-int64(before))/float64(b.N), "B/trade")
}
