package leaderboard

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// writeBatcher groups the concurrent writes of one board into write.lua calls ("group
// commit"): while calls are at Redis, the writes that arrive queue up, and the next call
// takes them together, up to maxWriteBatch. A write finding fewer than maxWriteFlights
// calls in flight is sent at once: no timer waits for company. The script applies a
// batch's writes in order, each exactly as if it ran alone, so batching changes only
// the cost: every call costs Redis a fixed share (reading and parsing the request with
// the board's keys, starting the script) that the writes of a batch split.
type writeBatcher struct {
	mu       sync.Mutex
	queue    []*pendingWrite
	inFlight int // flush goroutines running, at most maxWriteFlights
}

// maxWriteBatch bounds the writes of one script call, and so the time one call holds
// Redis.
const maxWriteBatch = 64

// maxWriteFlights is how many calls of one board may be on their way at once: with two,
// Redis runs one batch while the next is on its way, instead of waiting a round trip
// between them. Writes in different calls are concurrent ones; each call is atomic.
const maxWriteFlights = 2

// States of a pending write.
const (
	writeQueued    int32 = iota // waiting for a batch
	writeSent                   // part of a call in flight
	writeAbandoned              // its caller left before it was sent: never sent
)

// pendingWrite is one validated write waiting for its batch.
type pendingWrite struct {
	req      writeReq
	enc      string      // the value's encoding
	p        *periodKeys // the periods it writes: a batch holds writes of one set
	rankAt   int         // 1-based window to rank in; 0 for none
	dedupKey string      // "" for none

	state atomic.Int32
	done  chan struct{} // closed when reply or err is set
	reply []any
	err   error
}

// submit queues w on its board's batcher and waits for its reply or the end of ctx. A
// write whose caller leaves before it was sent is never sent; one already sent may
// have been applied, and the error says so.
func (s *Store) submit(ctx context.Context, st *boardState, w *pendingWrite) error {
	if err := ctx.Err(); err != nil {
		return w.failed(err)
	}
	w.done = make(chan struct{})
	b := &st.batch
	b.mu.Lock()
	b.queue = append(b.queue, w)
	start := b.inFlight < maxWriteFlights
	if start {
		b.inFlight++
	}
	b.mu.Unlock()
	if start {
		go s.flushWrites(st)
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	if w.state.CompareAndSwap(writeQueued, writeAbandoned) {
		return w.failed(ctx.Err())
	}
	select {
	case <-w.done: // answered meanwhile
		return w.err
	default:
		return w.failed(fmt.Errorf("%w (the write was sent and may have been applied)", ctx.Err()))
	}
}

// failed returns err as the error of the write, naming its board and member.
func (w *pendingWrite) failed(err error) error {
	return fmt.Errorf("leaderboard: %s: write %s: %w", w.req.board, w.req.member, err)
}

// flushWrites sends batches until the board's queue is empty; up to maxWriteFlights run
// at once.
func (s *Store) flushWrites(st *boardState) {
	b := &st.batch
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		// One call writes one set of periods: a write queued across midnight waits for
		// the next.
		p := b.queue[0].p
		var batch, rest []*pendingWrite
		for _, w := range b.queue {
			if w.p == p && len(batch) < maxWriteBatch {
				batch = append(batch, w)
			} else {
				rest = append(rest, w)
			}
		}
		b.queue = rest
		b.mu.Unlock()
		s.sendWrites(st, batch)
	}
}

// sendWrites runs one batch through write.lua and answers each write.
func (s *Store) sendWrites(st *boardState, batch []*pendingWrite) {
	live := batch[:0]
	for _, w := range batch {
		if w.state.CompareAndSwap(writeQueued, writeSent) {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	p := live[0].p
	now := s.cfg.Now()
	refresh := "0"
	if st.refreshTTL(now) {
		refresh = "1" // the first call of the board in ttlRefreshEvery
	}
	keys := append(make([]string, 0, len(p.keys)+len(live)), p.keys...)
	args := make([]any, 0, 6+len(p.wins)+5*len(live))
	args = append(args, st.order, st.ranking, st.MaxMembers, refresh, s.cfg.DedupTTL.Milliseconds(), len(p.wins))
	for _, w := range p.wins {
		args = append(args, s.ttl(w, now))
	}
	for _, w := range live {
		dk := 0
		if w.dedupKey != "" {
			keys = append(keys, w.dedupKey)
			dk = len(keys)
		}
		args = append(args, w.req.mode, w.req.member, w.enc, w.rankAt, dk)
	}
	// Not a caller's context: the call serves every write in it. The client's read
	// timeout bounds it.
	res, err := writeScript.Run(context.Background(), s.rdb, keys, args...).Slice()
	if err == nil && len(res) != len(live) {
		err = fmt.Errorf("unexpected reply: %d results for %d writes", len(res), len(live))
	}
	for i, w := range live {
		if err != nil {
			w.err = w.failed(err)
		} else if w.reply, _ = res[i].([]any); w.reply == nil {
			w.err = w.failed(fmt.Errorf("unexpected reply %v", res[i]))
		}
		close(w.done)
	}
}
