package ratelimit

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces concurrent checks into one script call ("group commit"): while a
// call is at Redis, the checks that arrive queue up, and when it returns they all go
// in the next call, up to max per call. An idle limiter sends a check at once: no
// timer waits for company. The script applies a batch's checks in order, so checks
// of one identifier see each other's charges exactly as if they ran one by one.
type batcher struct {
	l   *Limiter
	max int

	mu      sync.Mutex
	queue   []*pending
	flowing bool // a flush goroutine is running

	// perSlot is set on Redis Cluster (or once Redis answered CROSSSLOT): a call may
	// then only hold checks whose keys share a hash slot, and a batch becomes one call
	// per slot, pipelined.
	perSlot atomic.Bool
}

// States of a pending check.
const (
	queued    int32 = iota // waiting for a batch
	sent                   // part of a call in flight
	abandoned              // its caller left before it was sent: never sent
)

// pending is one check waiting for its batch.
type pending struct {
	keys   []string
	cost   int64
	queued time.Time // when Config.Timeout bounds calls: the start of its wait
	state  atomic.Int32
	call   *flight       // set before state becomes sent
	done   chan struct{} // closed when now, reply and err are set
	now    int64
	reply  []int64 // allowed, then 4 values per policy
	err    error
}

// flight is one batch at Redis. Its context is cancelled when every caller in it has
// left, so that nobody's deadline cuts short a call others still wait for.
type flight struct {
	waiting atomic.Int32
	cancel  context.CancelFunc
}

func newBatcher(l *Limiter, max int, cluster bool) *batcher {
	b := &batcher{l: l, max: max}
	b.perSlot.Store(cluster)
	return b
}

// check queues one check and waits for its batch's answer or the end of ctx.
func (b *batcher) check(ctx context.Context, keys []string, cost int64) (now int64, reply []int64, err error) {
	p := &pending{keys: keys, cost: cost, done: make(chan struct{})}
	if b.l.timeout > 0 {
		p.queued = time.Now()
	}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	start := !b.flowing
	b.flowing = true
	b.mu.Unlock()
	if start {
		go b.flush()
	}
	select {
	case <-p.done:
		return p.now, p.reply, p.err
	case <-ctx.Done():
	}
	if p.state.CompareAndSwap(queued, abandoned) {
		return 0, nil, ctx.Err()
	}
	select {
	case <-p.done: // answered meanwhile: the charge was made, report it
		return p.now, p.reply, p.err
	default:
	}
	if p.call.waiting.Add(-1) == 0 {
		p.call.cancel()
	}
	return 0, nil, ctx.Err()
}

// flush sends batches until the queue is empty.
func (b *batcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.max)
		if n == 0 {
			b.flowing = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

// send runs one batch and answers each of its checks.
func (b *batcher) send(batch []*pending) {
	// The call's deadline is the oldest check's: no check waits longer than
	// Config.Timeout in all, queueing included.
	var ctx context.Context
	f := &flight{}
	if b.l.timeout > 0 {
		ctx, f.cancel = context.WithDeadline(context.Background(), batch[0].queued.Add(b.l.timeout))
	} else {
		ctx, f.cancel = context.WithCancel(context.Background())
	}
	defer f.cancel()
	f.waiting.Store(int32(len(batch)))
	live := batch[:0]
	for _, p := range batch {
		p.call = f
		if p.state.CompareAndSwap(queued, sent) {
			live = append(live, p)
		}
	}
	if f.waiting.Add(-int32(len(batch)-len(live))) == 0 {
		return // every caller left
	}
	if !b.perSlot.Load() {
		err := b.run(ctx, live)
		if err == nil || !redis.HasErrorPrefix(err, "CROSSSLOT") {
			return
		}
		// A cluster behind a client that does not say so: CROSSSLOT is refused
		// before the script runs, so nothing was charged.
		b.perSlot.Store(true)
	}
	b.runPerSlot(ctx, live)
}

// run sends checks in one script call and answers them; it returns the call's error.
func (b *batcher) run(ctx context.Context, checks []*pending) error {
	keys, argv := b.args(checks)
	reply, err := b.l.eval(ctx, keys, argv, len(checks))
	if err != nil && redis.HasErrorPrefix(err, "CROSSSLOT") && !b.perSlot.Load() {
		return err // send retries per slot
	}
	b.answer(checks, reply, err)
	return err
}

// runPerSlot sends one call per hash slot, pipelined, and answers every check.
func (b *batcher) runPerSlot(ctx context.Context, checks []*pending) {
	groups := make(map[int][]*pending)
	var slots []int
	for _, p := range checks {
		s := keySlot(p.keys[0])
		if _, ok := groups[s]; !ok {
			slots = append(slots, s)
		}
		groups[s] = append(groups[s], p)
	}
	pl, ok := b.l.rdb.(interface{ Pipeline() redis.Pipeliner })
	if len(slots) == 1 || !ok {
		for _, s := range slots {
			b.run(ctx, groups[s])
		}
		return
	}
	pipe := pl.Pipeline()
	cmds := make([]*redis.Cmd, len(slots))
	start := time.Now()
	for i, s := range slots {
		keys, argv := b.args(groups[s])
		cmds[i] = pipe.EvalSha(ctx, checkScript.Hash(), keys, argv...)
	}
	_, _ = pipe.Exec(ctx)
	b.l.metrics.duration.Observe(time.Since(start).Seconds())
	for i, s := range slots {
		group := groups[s]
		if err := cmds[i].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// EVAL loads the script on that node for the next batch.
			b.run(ctx, group)
			continue
		}
		reply, err := cmds[i].Int64Slice()
		if err == nil {
			err = b.l.checkReply(reply, len(group))
		}
		b.answer(group, reply, err)
	}
}

// args returns the KEYS and ARGV of check.lua for checks.
func (b *batcher) args(checks []*pending) ([]string, []any) {
	np := len(b.l.policies)
	keys := make([]string, 0, len(checks)*np)
	argv := slices.Grow(slices.Clone(b.l.argv), len(checks))
	for _, p := range checks {
		keys = append(keys, p.keys...)
		argv = append(argv, p.cost)
	}
	return keys, argv
}

// answer hands each check its part of a reply, or the call's error.
func (b *batcher) answer(checks []*pending, reply []int64, err error) {
	stride := 1 + 4*len(b.l.policies)
	for i, p := range checks {
		if err != nil {
			p.err = err
		} else {
			p.now, p.reply = reply[0], reply[1+i*stride:1+(i+1)*stride:1+(i+1)*stride]
		}
		close(p.done)
	}
}
