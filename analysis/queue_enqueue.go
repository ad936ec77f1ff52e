package analysis

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// enqueueBatcher groups concurrent Enqueue calls into script calls: a caller that finds
// fewer than maxEnqueueFlights batches in flight sends the waiting requests; requests
// arriving meanwhile wait and go in a later batch, sent by a goroutine that runs while
// any are waiting.
// Under a burst (many candles closing at once) this saves round trips and script
// invocations; a lone caller pays nothing extra.
type enqueueBatcher struct {
	mu       sync.Mutex
	pending  []*enqueueReq
	inFlight int // senders running, at most maxEnqueueFlights
}

type enqueueReq struct {
	spec JobSpec
	id   string // the new job's id, if one is created
	// Filled in before done is closed.
	gotID string
	how   string
	err   error
	done  chan struct{}
}

// maxEnqueueBatch bounds the requests of one script call.
const maxEnqueueBatch = 256

// maxEnqueueFlights is how many batches may be on their way at once. With one, requests
// arriving while a batch is at Redis all wait for the next: with 8 producers a call
// carries 7.3 jobs instead of 3.8 with two in flight, and Redis, which is what limits the
// queue, spends less CPU a job (BENCHMARKS.md, seventh session). A lone caller is sent at
// once either way. Each script is atomic, so concurrent batches would coalesce as one
// does.
const maxEnqueueFlights = 1

// submit queues r and returns when its batch has run or ctx ends.
func (q *Queue) submit(ctx context.Context, r *enqueueReq) error {
	b := &q.batch
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := b.inFlight < maxEnqueueFlights
	if lead {
		b.inFlight++
	}
	b.mu.Unlock()
	if lead {
		q.flush(ctx, true)
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		// The request may still be applied: enqueueing is at-least-once.
		return fmt.Errorf("analysis: enqueue: %w", ctx.Err())
	}
}

// flush sends batches until none is waiting. The first call runs one batch and leaves
// the rest to a goroutine, so that its caller's latency stays one batch.
func (q *Queue) flush(ctx context.Context, first bool) {
	b := &q.batch
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		n := min(len(b.pending), maxEnqueueBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()

		// The batch serves other callers too, so it is not cut short by this caller's
		// context.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		q.runEnqueue(bctx, batch)
		cancel()
		for _, r := range batch {
			close(r.done)
		}
		// Let the callers just answered run before looking for more: a producer
		// that enqueues again at once then joins the next batch instead of finding no
		// sender and sending a batch of one while the others queue behind it.
		runtime.Gosched()
		if first {
			b.mu.Lock()
			more := len(b.pending) > 0
			if !more {
				b.inFlight--
			}
			b.mu.Unlock()
			if more {
				go q.flush(context.WithoutCancel(ctx), false)
			}
			return
		}
	}
}

// runEnqueue runs the enqueue script for batch and fills in each request's reply.
func (q *Queue) runEnqueue(ctx context.Context, batch []*enqueueReq) {
	keys := []string{q.keys.stream(), q.keys.delayed()}
	args := make([]any, 0, 6+6*len(batch))
	args = append(args, q.keys.jobPrefix(), q.nowMs(), q.cfg.MaxLen, secs(q.cfg.JobTTL), q.streamMaxLen(), q.keys.coalescePrefix())
	for _, r := range batch {
		s := r.spec
		var wm int64
		if !s.Watermark.IsZero() {
			wm = s.Watermark.UnixMilli()
		}
		args = append(args, r.id, string(s.Exchange), string(s.Symbol), s.Interval.String(), s.Analyzer, wm)
	}
	res, err := enqueueScript.Run(ctx, q.rdb, keys, args...).Slice()
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("unexpected reply of %d items for %d requests", len(res), len(batch))
	}
	for i, r := range batch {
		if err != nil {
			r.err = fmt.Errorf("analysis: enqueue %s: %w", r.spec.target(), err)
			continue
		}
		f, _ := res[i].([]any)
		if len(f) != 2 {
			r.err = fmt.Errorf("analysis: enqueue %s: unexpected reply %v", r.spec.target(), res[i])
			continue
		}
		r.gotID, r.how = str(f[0]), str(f[1])
	}
}
