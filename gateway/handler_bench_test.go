package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// BenchmarkTickerRequest measures the gateway's hot path in process, without the network:
// an authenticated, rate-limited, metered GET /v1/markets/binance/BTC-USDT/ticker through
// Server.Handler against the real Redis, from parallel goroutines, beside the bare read
// the handler makes (cache.MarketStore.Ticker); gateway-exact-rate is the same request
// through a gateway that checks every rate in Redis (Config.RateLease -1). Profile it
// with -cpuprofile.
func BenchmarkTickerRequest(b *testing.B) {
	ctx := context.Background()
	rdb := redistest.Client(b)
	prefix := redistest.Prefix(b, rdb)
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	tr := market.Trade{Exchange: market.Binance, Symbol: "BTC-USDT", ID: "1", Price: decimal.RequireFromString("65000.5"),
		Qty: decimal.RequireFromString("0.25"), Side: market.Buy, Time: time.Now().UTC()}
	if _, err := store.Write(ctx, &cache.Batch{Trades: []market.Trade{tr}}); err != nil {
		b.Fatal(err)
	}
	srv, err := gateway.New(gateway.Deps{Redis: rdb, Market: store}, gateway.Config{Prefix: prefix, SecretKeys: testSecretKeys}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	// The same gateway checking every request's rate in Redis, over the same tokens.
	exact, err := gateway.New(gateway.Deps{Redis: rdb, Market: store}, gateway.Config{Prefix: prefix, SecretKeys: testSecretKeys, RateLease: -1}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	raw, _, _, err := srv.Tokens().Create(ctx, gateway.TokenSpec{Name: "bench", TTL: time.Hour,
		Scopes: []gateway.Scope{gateway.ScopeMarketRead}, Rate: "gcra:10000000/s"})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"gateway", srv.Handler()}, {"gateway-exact-rate", exact.Handler()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", "/v1/markets/binance/BTC-USDT/ticker", nil)
					req.Header.Set("Authorization", "Bearer "+raw)
					w := httptest.NewRecorder()
					c.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d: %s", w.Code, w.Body.String())
						return
					}
				}
			})
		})
	}
	b.Run("bare-read", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := store.Ticker(ctx, market.Binance, "BTC-USDT"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
