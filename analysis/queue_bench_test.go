package analysis

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstash/tickstash/market"
)

// BenchmarkQueueEndToEnd measures one job through the queue: enqueued by one of 8
// producers, read and claimed by a worker of concurrency 4 whose handler does nothing,
// settled and acknowledged. It is the hot path `tickstash-bench queue` measures beside
// asynq; profile it with
//
//	go test -run '^$' -bench QueueEndToEnd -benchtime 20000x -cpuprofile cpu.out ./analysis/
func BenchmarkQueueEndToEnd(b *testing.B) {
	q, _ := newTestQueue(b, nil, QueueConfig{MaxLen: b.N + 1000})
	var handled atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	w := NewWorker(q, nil, nil, WorkerConfig{Concurrency: 4, Handler: func(context.Context, Job) error {
		if handled.Add(1) == n {
			close(all)
		}
		return nil
	}}, nil, nil)
	stop := startWorker(b, w)
	defer stop()
	ctx := context.Background()
	cpu0 := redisCPU(b, q)
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				s := JobSpec{Exchange: "bench", Symbol: market.Symbol("B" + strconv.FormatInt(i, 10) + "-USD"), Interval: market.Interval1m}
				if _, err := q.Enqueue(ctx, s); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-all
	b.StopTimer()
	// Redis's own CPU time per job (all clients: meaningful on a Redis of one's own).
	b.ReportMetric(float64((redisCPU(b, q)-cpu0).Microseconds())/float64(b.N), "redis-µs/op")
}

// redisCPU returns the CPU time the Redis server has used (INFO cpu, user + system).
func redisCPU(tb testing.TB, q *Queue) time.Duration {
	tb.Helper()
	info, err := q.rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
