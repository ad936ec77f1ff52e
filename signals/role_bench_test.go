package signals

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// BenchmarkRoleUpdates measures the signals role's rate on the real Redis and NATS: b.N
// analysis updates (16 markets, every other one raising a signal) go through one role,
// one at a time as its durable consumer allows, from the stream to acknowledged.
func BenchmarkRoleUpdates(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rdb := redistest.Client(b)
	prefix := redistest.Prefix(b, rdb)
	nc := connect(b, testenv.NATSURL())
	sc, as := uniqueStream(b, nc), uniqueAnalysisStream(b, nc)
	dist, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour, Memory: true}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	pub, err := pipeline.NewAnalysisPublisher(ctx, nc, as)
	if err != nil {
		b.Fatal(err)
	}
	strategies, _ := ParseStrategies("s.yaml", []byte("strategies:\n  - name: macd\n    intervals: [1m]\n    rules: [{type: macd}]\n"))
	reg := prometheus.NewRegistry()
	role, err := NewRole(ctx, connect(b, testenv.NATSURL()), rdb, dist, nil, RoleConfig{Strategies: strategies, Prefix: prefix, Stream: as}, nil, reg)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		u := macdUpdate(i/16, float64(1-2*((i/16)%2)), 0)
		u.Symbol = market.Symbol(fmt.Sprintf("B%d-USD", i%16))
		if _, err := pub.PublishUpdate(ctx, &u); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- role.Run(rctx) }()
	for counter(b, reg, "tickstash_signals_updates_total") < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stop()
	<-done
}
